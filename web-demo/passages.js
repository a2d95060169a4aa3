// Passages to read aloud while recording: varied sounds, about a minute each at a calm pace.

export const PASSAGES = {
  en:
    "When the sunlight strikes raindrops in the air, they act as a prism and form a rainbow. " +
    "The rainbow is a division of white light into many beautiful colours. These take the shape " +
    "of a long round arch, with its path high above, and its two ends apparently beyond the horizon. " +
    "There is, according to legend, a boiling pot of gold at one end. People look, but no one ever " +
    "finds it. When a man looks for something beyond his reach, his friends say he is looking for " +
    "the pot of gold at the end of the rainbow. Throughout the centuries people have explained the " +
    "rainbow in various ways. Some have accepted it as a miracle without physical explanation.",
  zh:
    "北风跟太阳在那儿争论谁的本事大。争来争去就是分不出高低来。这时候路上来了个走道儿的，" +
    "他身上穿着件厚大衣。他们俩就商量好了，说谁能先叫这个走道儿的脱下他的厚大衣，就算谁的本事大。" +
    "北风就使劲儿地刮起来了，不过他越是刮得厉害，那个走道儿的把大衣裹得越紧。后来北风没法儿了，" +
    "只好就算了。过了一会儿，太阳出来了。他火辣辣地一晒，那个走道儿的马上就把那件厚大衣脱下来了。" +
    "这下儿北风只好承认，他们俩当中还是太阳的本事大。",
};
