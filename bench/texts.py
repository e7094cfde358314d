"""Texts the ChatterBox benchmarks speak: one chunk each, of ordinary English."""

SENTENCES = [
    "The quick brown fox jumps over the lazy dog while the band plays a slow and quiet song.",
    "Every morning the baker opens her shop before dawn and fills the street with the smell of bread.",
    "A long train crossed the valley at sunset, its windows glowing like a string of lanterns.",
    "They built the bridge in a single summer, working from first light until the stars came out.",
    "Somewhere in the old library a clock ticks, counting hours that nobody seems to need.",
    "The river rose after three days of rain and carried the fallen branches down to the sea.",
    "Please remember to water the plants on the balcony while we are away for the weekend.",
    "Our meeting moved to Thursday afternoon, so the report can wait until Wednesday evening.",
    "High above the harbour, gulls circled the fishing boats that were coming home with the tide.",
    "He learned to play the violin at sixty and now performs every Sunday in the village square.",
    "The museum keeps its oldest maps in a cool dark room where only two visitors may enter at once.",
    "After the storm the whole town came out to clear the roads and share what food they had.",
    "She painted the door a bright yellow so that friends would find the house without asking.",
    "Children ran along the beach chasing the waves and shouting whenever the water touched their feet.",
    "The lighthouse keeper wrote a letter every night, though the mail boat came only once a month.",
    "In the garden behind the school, the students grow tomatoes, beans and far too many pumpkins.",
]
