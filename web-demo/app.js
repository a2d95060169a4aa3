// The demo page: sign in, record a voice, switch consent, grant bots, join a room, type, hear.

import { PASSAGES } from "./passages.js";
import { Recorder } from "./recorder.js";
import { Voxroom, VoxroomError } from "./voxroom.js";

const $ = (id) => document.getElementById(id);

const state = {
  vox: null,
  account: null,
  room: null,
  player: null,
  recorder: null,
  enrollAvailable: true,
  statusTimer: null,
  levelTimer: null,
  quota: null,
};
// For tests and curious developers: the live client, player and timings.
window.voxroomDemo = { state, sendTimes: [], acceptedTimes: [] };

// ---- errors, in words a person can act on -------------------------------------------------

function formatWait(seconds) {
  if (seconds == null) return "";
  if (seconds < 90) return `${Math.ceil(seconds)} seconds`;
  const minutes = Math.ceil(seconds / 60);
  if (minutes < 90) return `${minutes} minutes`;
  const hours = Math.floor(minutes / 60);
  return `${hours} h ${minutes % 60} min`;
}

export function explain(err) {
  if (!(err instanceof VoxroomError)) return err?.message || String(err);
  switch (err.code) {
    case "daily_limit":
      return `Today's quota is used up, so this was not spoken. You can send again in ${formatWait(err.retry_after_s)}.`;
    case "rate_limited":
      return `Slow down a little: too many messages at once. Try again in ${formatWait(err.retry_after_s || 1)}.`;
    case "content_blocked":
      return "This message was blocked by the content filter and was not spoken. Please rephrase it.";
    case "consent_required":
      return `${err.message} Switch on "Let Voxroom speak in my voice" to use your own voice.`;
    case "overloaded":
      return `The server is busy right now. Nothing was charged; try again in ${formatWait(err.retry_after_s || 3)}.`;
    default:
      return err.message;
  }
}

function showError(err, context) {
  const text = explain(err);
  const line = document.createElement("p");
  line.className = "error";
  line.dataset.code = err?.code || "error";
  line.textContent = context ? `${context}: ${text}` : text;
  const dismiss = document.createElement("button");
  dismiss.type = "button";
  dismiss.className = "dismiss";
  dismiss.setAttribute("aria-label", "Dismiss this message");
  dismiss.textContent = "×";
  dismiss.onclick = () => line.remove();
  line.append(dismiss);
  const box = $("errors");
  box.prepend(line);
  while (box.children.length > 4) box.lastChild.remove();
}

function clearErrors() {
  $("errors").replaceChildren();
}

async function guarded(context, action) {
  try {
    return await action();
  } catch (err) {
    showError(err, context);
    return undefined;
  }
}

// ---- sign in --------------------------------------------------------------------------------

async function setUpSignIn() {
  let config = { demo: false };
  try {
    config = await (await fetch("/demo/config")).json();
  } catch {
    /* an older server: token sign-in only */
  }
  $("name-form").hidden = !config.demo;
  $("token-form").hidden = config.demo;
  if (config.max_text_chars) $("text").maxLength = config.max_text_chars;

  $("name-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded("Sign in", async () => {
      const response = await fetch("/demo/token", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name: $("name").value }),
      });
      const body = await response.json();
      if (!response.ok) throw new VoxroomError(body.error?.code, body.error?.message || "Sign-in failed.");
      await signIn(body.token, body.account);
    });
  });
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded("Sign in", () => signIn($("token").value.trim(), null));
  });
}

function accountOf(token) {
  try {
    const payload = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    return payload.sub;
  } catch {
    return null;
  }
}

async function signIn(token, account) {
  if (state.vox) {
    await leaveRoom();
    state.vox.close();
  }
  const vox = new Voxroom({ token });
  await vox.connect();
  state.vox = vox;
  state.account = account || accountOf(token);
  clearErrors();
  $("whoami").hidden = false;
  $("whoami").textContent = `Signed in as ${state.account}`;
  const signOut = document.createElement("button");
  signOut.type = "button";
  signOut.textContent = "Sign out";
  signOut.onclick = () => window.location.reload(); // drops the token: it lives only in this page
  $("whoami").append(signOut);
  $("signin").hidden = true;
  for (const id of ["voice", "room"]) $(id).classList.remove("locked");
  $("send").disabled = true;
  vox.on("member_joined", (m) => m.room === state.room && addMember(m.account, m.kind));
  vox.on("member_left", (m) => m.room === state.room && removeMember(m.account));
  vox.on("speech_start", (m) => logLine(m.from, m.text, m.voice, m.utterance));
  vox.on("speech_error", (m) => {
    markUtterance(m.utterance, "failed");
    showError(new VoxroomError(m.code, m.message), "A message could not be spoken");
  });
  vox.on("speech_end", (m) => markUtterance(m.utterance, "spoken"));
  vox.on("close", (m) => {
    if (vox === state.vox && m.code !== 1000) showError(new VoxroomError("closed", m.reason));
  });
  await Promise.all([refreshVoice(), loadVoices()]);
}

// ---- your voice --------------------------------------------------------------------------------

function showPassage() {
  const lang = $("passage-lang").value;
  $("passage").textContent = PASSAGES[lang];
  $("passage").lang = lang;
}

function setEnrollAvailable(available) {
  state.enrollAvailable = available;
  $("enroll-unavailable").hidden = available;
  for (const id of ["record", "upload", "delete-voice", "passage-lang"]) $(id).disabled = !available;
  if (!available) setVoiceControls(false);
}

// Consent and grants need a voice to apply to; until one is enrolled they are shown but off.
function setVoiceControls(enrolled) {
  for (const id of ["consent", "grantee", "grant"]) $(id).disabled = !enrolled;
  $("controls-hint").hidden = enrolled;
}

async function refreshVoice() {
  let status;
  try {
    status = await state.vox.voiceStatus();
  } catch (err) {
    if (err.status === 404 || err.status === 405) {
      setEnrollAvailable(false);
      return;
    }
    throw err;
  }
  setEnrollAvailable(true);
  renderVoice(status);
  clearTimeout(state.statusTimer);
  if (status.status === "fitting") state.statusTimer = setTimeout(() => guarded("Voice", refreshVoice), 2000);
}

function renderVoice(status) {
  const summary = {
    none: "No voice recorded yet.",
    fitting: "Your voice is being fitted. Until it is ready, the nearest built-in voice stands in.",
    ready: "Your voice is ready.",
    failed: "The voice fit did not finish; you can record again.",
  };
  $("voice-summary").textContent = status.enrolled
    ? summary[status.status] || `Voice status: ${status.status}.`
    : summary.none;
  if (status.error) $("voice-summary").textContent += ` ${status.error}`;
  const progress = status.progress;
  $("fit-progress").hidden = !status.enrolled || !progress;
  if (progress) {
    $("fit-bar").value = progress.fraction;
    $("fit-stage").textContent = `${Math.round(progress.fraction * 100)} % — ${progress.stage}`;
  }
  const similarity = status.similarity;
  $("similarity").hidden = !similarity;
  if (similarity) {
    const score = typeof similarity === "number" ? similarity : similarity.score;
    const of = status.similarity_detail?.of ?? similarity.of;
    const standIn = of?.startsWith("stock:")
      ? ` (measured on the stand-in ${of.slice(6)}; the fitted voice replaces it)`
      : "";
    $("similarity-score").textContent = `${Math.round(score * 100)} / 100`;
    $("similarity-note").textContent = standIn;
  }
  renderQuality(status.quality);
  if (status.quota) renderQuota(status.quota);
  setVoiceControls(Boolean(status.enrolled));
  $("consent").checked = Boolean(status.consent);
  renderGrants(status.grants || []);
  $("delete-voice").disabled = !status.enrolled;
}

function renderQuality(quality) {
  $("quality").hidden = !quality;
  if (!quality) return;
  const figures = [
    ["Verdict", quality.verdict === "ok" ? "Accepted" : "Not accepted"],
    ["Length", `${(quality.duration_s ?? 0).toFixed(1)} s`],
    ["Speech", `${(quality.speech_s ?? 0).toFixed(1)} s`],
    ["Signal to noise", quality.snr_db == null ? "—" : `${quality.snr_db.toFixed(1)} dB`],
    ["Clipping", quality.clipping_ratio == null ? "—" : `${(quality.clipping_ratio * 100).toFixed(2)} %`],
  ];
  $("quality-figures").replaceChildren(
    ...figures.flatMap(([name, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = name;
      const dd = document.createElement("dd");
      dd.textContent = value;
      return [dt, dd];
    }),
  );
  const advice = quality.advice?.length ? quality.advice : ["The recording is fine."];
  $("quality-advice").replaceChildren(
    ...advice.map((text) => {
      const li = document.createElement("li");
      li.textContent = text;
      return li;
    }),
  );
}

function renderGrants(grants) {
  $("grants").replaceChildren(
    ...grants.map((grant) => {
      const li = document.createElement("li");
      const until = grant.expires_at ? ` until ${new Date(grant.expires_at).toLocaleString()}` : "";
      li.textContent = `${grant.grantee}${until} `;
      const revoke = document.createElement("button");
      revoke.type = "button";
      revoke.textContent = "Revoke";
      revoke.setAttribute("aria-label", `Revoke ${grant.grantee}`);
      revoke.onclick = () =>
        guarded("Revoke", async () => {
          await state.vox.revoke(grant.grantee);
          li.remove();
        });
      li.append(revoke);
      return li;
    }),
  );
}

async function enroll(recording) {
  const lang = $("passage-lang").value;
  $("enroll-status").textContent = "Checking the recording… this takes a few seconds.";
  try {
    const result = await state.vox.enroll(recording, lang);
    $("enroll-status").textContent = "Recording accepted.";
    renderQuality(result.quality);
  } catch (err) {
    $("enroll-status").textContent = "";
    if (err.quality) renderQuality(err.quality);
    throw err;
  }
  await refreshVoice();
}

function setUpVoice() {
  showPassage();
  $("passage-lang").addEventListener("change", showPassage);
  $("record").addEventListener("click", () =>
    guarded("Recording", async () => {
      const button = $("record");
      if (state.recorder?.recording) {
        const seconds = state.recorder.elapsed();
        const recording = await state.recorder.stop();
        button.textContent = "Start recording";
        button.setAttribute("aria-pressed", "false");
        if (seconds < 10) throw new Error("That was shorter than 10 seconds. Record the whole passage, please.");
        await enroll(recording);
        return;
      }
      state.recorder = new Recorder({
        onTick: (s) => {
          $("record-time").textContent = `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
        },
        onAutoStop: () => button.click(),
      });
      await state.recorder.start();
      button.textContent = "Stop and send";
      button.setAttribute("aria-pressed", "true");
      $("enroll-status").textContent = "Recording… read the passage aloud.";
    }),
  );
  $("upload").addEventListener("change", () => {
    const file = $("upload").files[0];
    if (file) guarded("Upload", () => enroll(file)).finally(() => ($("upload").value = ""));
  });
  $("consent").addEventListener("change", () => {
    const wanted = $("consent").checked;
    guarded("Consent", () => state.vox.setConsent(wanted)).then((result) => {
      if (result === undefined) $("consent").checked = !wanted; // refused: show what is true
    });
  });
  $("grant-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded("Grant", async () => {
      const grant = await state.vox.grant($("grantee").value.trim());
      $("grantee").value = "";
      const shown = [...$("grants").children].map((li) => li.firstChild.textContent.trim());
      if (!shown.includes(grant.grantee)) {
        const current = [...shown.map((grantee) => ({ grantee })), grant];
        renderGrants(current);
      }
    });
  });
  $("delete-voice").addEventListener("click", () => {
    const sure = window.confirm(
      "Delete your voice? The recording's features, the fitted voice, every grant and all audio made from it are erased. This cannot be undone.",
    );
    if (!sure) return;
    guarded("Delete", async () => {
      await state.vox.deleteVoice();
      $("enroll-status").textContent = "Your voice was deleted.";
      await refreshVoice();
    });
  });
}

async function loadVoices() {
  const voices = await guarded("Voices", () => state.vox.stockVoices());
  const select = $("voice-choice");
  select.replaceChildren(select.options[0]);
  for (const voice of voices || []) {
    const option = document.createElement("option");
    option.value = voice.name;
    option.textContent = `${voice.name.replace("stock:", "")} (${voice.languages.join(", ")})`;
    select.append(option);
  }
}

// ---- the room ----------------------------------------------------------------------------------

function renderMembers(members) {
  $("members").replaceChildren();
  for (const member of members) addMember(member.account, member.kind);
}

function addMember(account, kind) {
  if ([...$("members").children].some((li) => li.dataset.account === account)) return;
  const li = document.createElement("li");
  li.dataset.account = account;
  li.textContent = account + (kind === "bot" ? " (bot)" : "") + (account === state.account ? " (you)" : "");
  $("members").append(li);
}

function removeMember(account) {
  for (const li of $("members").children) if (li.dataset.account === account) li.remove();
}

function logLine(from, text, voice, utterance) {
  const li = document.createElement("li");
  li.dataset.utterance = utterance;
  const who = document.createElement("strong");
  who.textContent = from;
  const said = document.createElement("span");
  said.textContent = ` ${text}`;
  const meta = document.createElement("small");
  meta.textContent = ` — ${voice}`;
  li.append(who, said, meta);
  $("log").prepend(li);
  while ($("log").children.length > 50) $("log").lastChild.remove();
}

function markUtterance(utterance, outcome) {
  const li = [...$("log").children].find((item) => item.dataset.utterance === utterance);
  if (li) li.dataset.outcome = outcome;
}

function renderQuota(quota) {
  state.quota = quota;
  const resets = new Date(quota.resets_at);
  $("quota").textContent = `Today: ${quota.used} of ${quota.limit} messages used (resets ${resets.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}).`;
}

async function joinRoom() {
  const room = $("room-name").value.trim();
  if (state.room) await leaveRoom();
  const joined = await state.vox.join(room);
  state.room = room;
  renderMembers(joined.members);
  $("join").hidden = true;
  $("leave").hidden = false;
  $("room-name").disabled = true;
  $("send").disabled = false;
  $("listening").textContent = "Connecting audio…";
  try {
    state.player = await state.vox.listen(room, { mode: $("audio-mode").value, audioElement: $("room-audio") });
    window.voxroomDemo.player = state.player;
    $("listening").textContent =
      state.player.kind === "webrtc" ? "Listening over WebRTC." : "Listening over the WebSocket (WebCodecs).";
    startLevelMeter();
  } catch (err) {
    $("listening").textContent = "No audio: you can still type, but you will not hear the room.";
    showError(err, "Audio");
  }
}

async function leaveRoom() {
  stopLevelMeter();
  state.player?.stop();
  state.player = null;
  window.voxroomDemo.player = null;
  if (state.room) {
    const room = state.room;
    state.room = null;
    await state.vox.leave(room).catch(() => {});
  }
  $("members").replaceChildren();
  $("join").hidden = false;
  $("leave").hidden = true;
  $("room-name").disabled = false;
  $("send").disabled = true;
  $("listening").textContent = "";
}

function startLevelMeter() {
  let last = null;
  state.levelTimer = setInterval(async () => {
    if (!state.player) return;
    const stats = await state.player.stats();
    // Average power over the last interval, from the cumulative energy the player reports.
    if (last && stats.totalSamplesDuration > last.totalSamplesDuration) {
      const power =
        (stats.totalAudioEnergy - last.totalAudioEnergy) / (stats.totalSamplesDuration - last.totalSamplesDuration);
      $("level").value = Math.min(1, Math.sqrt(Math.max(0, power)) * 2);
    }
    last = stats;
  }, 200);
}

function stopLevelMeter() {
  clearInterval(state.levelTimer);
  $("level").value = 0;
}

function setUpRoom() {
  $("join-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded("Join", joinRoom);
  });
  $("leave").addEventListener("click", () => guarded("Leave", leaveRoom));
  $("say-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("text").value;
    if (!text.trim()) return;
    window.voxroomDemo.sendTimes.push(Date.now());
    guarded("Send", async () => {
      const accepted = await state.vox.say(state.room, text, {
        voice: $("voice-choice").value || undefined,
        lang: $("lang").value,
      });
      window.voxroomDemo.acceptedTimes.push(Date.now());
      $("text").value = "";
      renderQuota(accepted.quota);
    });
  });
  $("text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("say-form").requestSubmit();
    }
  });
}

setUpVoice();
setUpRoom();
setUpSignIn();
