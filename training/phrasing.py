"""Ways of asking: the many phrasings learners type, and the many ways a tool may be documented.

The corpus (`training/corpus.py`) writes each question in a few textbook forms and records what it
asks in `Turn.slots` ({"kind": "sum", "a": 37, "b": 48}, {"kind": "capital", "country": "Peru"}...).
`rephrase(turn, rng)` writes the same question another way, as learners type it: synonyms ("take
away", "put together", "the product of"), other word orders ("add 48 to 37"), fillers and politeness
("hey, quick one:", "please"), lower case, no question mark, a small typo. `tool_descriptions(rng,
names)` words each tool's one-line description another way. Training draws them (training/train.py);
the evaluation measures them on `training/phrasings_held_out*.json`, sets written apart from this file.

Example:
    >>> import random
    >>> from training.corpus import Turn
    >>> turn = Turn("What is 85 minus 47?", "", "arithmetic", "", "38", slots={"kind": "difference", "a": 85, "b": 47})
    >>> text = rephrase(turn, random.Random(3))
    >>> "85" in text and "47" in text
    True
"""

import re

# A question is a frame around a phrase: a noun phrase ("85 take away 47") in a question frame, or a
# verb phrase ("take 47 from 85") in a request frame.
NOUN_FRAMES = [
    "What is {}?",
    "What's {}?",
    "How much is {}?",
    "What do you get for {}?",
    "Tell me {}.",
    "{}?",
    "{}",
    "Do you know {}?",
    "Can you tell me {}?",
    "What does {} make?",
    "I need {}.",
    "what is {}",
]
VERB_FRAMES = [
    "Can you {}?",
    "Could you {} for me?",
    "Please {}.",
    "{}.",
    "{}, please.",
    "Would you {}?",
    "I need you to {}.",
    "Help me {}.",
]
ARITHMETIC = {
    "sum": (
        [
            "{a} plus {b}",
            "{a} + {b}",
            "{a}+{b}",
            "the sum of {a} and {b}",
            "the total of {a} and {b}",
            "{a} and {b} added together",
            "{a} added to {b}",
            "{b} plus {a}",
            "{a} and {b} together",
            "{a} and {b}",
            "{a} and {b} added up",
            "{a} and {b} combined",
            "{b} more than {a}",
            "the sum of {a} + {b}",
            "{a} add {b}",
        ],
        [
            "add {a} and {b}",
            "add {b} to {a}",
            "add up {a} and {b}",
            "work out {a} + {b}",
            "sum {a} and {b}",
            "put {a} and {b} together",
            "calculate {a} plus {b}",
            "figure out {a} plus {b}",
            "add {a} with {b}",
            "add {a} plus {b}",
            "total up {a} and {b}",
            "combine {a} and {b}",
            "add together {a} and {b}",
            "count {a} and {b} together",
        ],
    ),
    "difference": (
        [
            "{a} minus {b}",
            "{a} - {b}",
            "{a}-{b}",
            "{a} take away {b}",
            "{a} less {b}",
            "the difference between {a} and {b}",
            "{b} subtracted from {a}",
            "{b} less than {a}",
            "{a} with {b} taken away",
            "{a} subtract {b}",
            "difference of {a} and {b}",
            "{a} take {b}",
            "{a} without {b}",
        ],
        [
            "subtract {b} from {a}",
            "take {b} from {a}",
            "take {b} away from {a}",
            "work out {a} - {b}",
            "calculate {a} minus {b}",
            "take away {b} from {a}",
            "figure out {a} minus {b}",
            "remove {b} from {a}",
            "deduct {b} from {a}",
            "take off {b} from {a}",
            "minus {b} from {a}",
        ],
    ),
    "product": (
        [
            "{a} times {b}",
            "{a} * {b}",
            "{a} x {b}",
            "{a} multiplied by {b}",
            "the product of {a} and {b}",
            "{a} lots of {b}",
            "{a}x{b}",
            "{a}*{b}",
            "{a} multiplied with {b}",
            "{a} groups of {b}",
        ],
        [
            "multiply {a} by {b}",
            "multiply {a} and {b}",
            "work out {a} times {b}",
            "calculate {a} * {b}",
            "times {a} by {b}",
        ],
    ),
}
# Whole questions: terse ones, and ones that compare (`a` is the larger, as in the slots).
WHOLE = {
    "sum": [
        "{a} + {b} = ?",
        "{a}+{b}=",
        "{a} plus {b} equals",
        "add these numbers: {a}, {b}",
        "sum {a} {b}",
        "What number is {b} more than {a}?",
        "If you add {b} to {a}, what do you get?",
        "{a} and {b}, how much together?",
        "{a} and {b} make what?",
        "What do {a} and {b} add up to?",
        "I have {a} and {b}. What is the total?",
    ],
    "difference": [
        "{a} - {b} = ?",
        "{a}-{b}=",
        "{a} minus {b} equals",
        "{a} minus {b} is how much",
        "from {a} take {b}",
        "from {a} subtract {b}",
        "from {a} remove {b}",
        "How much bigger is {a} than {b}?",
        "How much more is {a} than {b}?",
        "By how much is {a} bigger than {b}?",
        "What number is {b} less than {a}?",
        "How far apart are {a} and {b}?",
        "What is the gap between {a} and {b}?",
        "If you take {b} from {a}, what is left?",
        "{a} and {b}: what is the difference?",
        "{name} is {b} and {name2} is {a}. How much older is {name2}?",
        "{name} has {a} points and {name2} has {b}. How many more does {name} have?",
    ],
    "product": ["{a} times {b} equals", "multiply these numbers: {a}, {b}", "{a} x {b} = ?", "{a}*{b}="],
}
# Everyday stories: a setup with the two numbers, then a question. Past tense, so any subject fits.
STORIES = {
    "sum": (
        [
            "{who} had {a} {items} and {gained} {b} more.",
            "{who} had {a} {items}, then {gained} another {b}.",
            "there were {a} {people} on the {vehicle} and {b} more got on.",
            "{a} {items} in one bag and {b} in the other.",
            "{who} read {a} pages on Monday and {b} on Tuesday.",
            "{who} had {a} {money} and earned {b} more.",
            "the team scored {a} points before lunch and {b} after.",
            "a class has {a} girls and {b} boys.",
            "{a} {people} came in the morning and {b} in the afternoon.",
        ],
        ["How many now?", "How many in total?", "How many altogether?", "What is the total?", "How many in all?"],
    ),
    "difference": (
        [
            "{who} had {a} {items} and {lost} {b}.",
            "{who} had {a} {items}, then {lost} {b} of them.",
            "there were {a} {people} on the {vehicle} and {b} got off.",
            "a jar held {a} {items} and {b} were taken out.",
            "a book has {a} pages and {who} read {b} so far.",
            "{who} had {a} {money} and spent {b}.",
            "a bottle held {a} ml and {who} drank {b}.",
            "the shop had {a} {items} and sold {b}.",
            "{a} {people} were at the party and {b} went home.",
        ],
        [
            "How many are left?",
            "How many left?",
            "How many remain?",
            "How many now?",
            "What is left?",
            "How many to go?",
        ],
    ),
    "product": (
        [
            "there are {a} boxes with {b} {items} in each.",
            "a garden has {a} rows of {b} plants.",
            "{who} bought {a} packs of {b} {items}.",
            "{a} teams have {b} players each.",
            "{who} saved {b} {money} a week for {a} weeks.",
        ],
        ["How many in total?", "How many is that?", "How many altogether?", "What is the total?"],
    ),
}
STORY_WORDS = {
    "who": ["I", "we", "my brother", "my mum", "{name}", "{name}", "the teacher"],
    "name": ["Sam", "Mia", "Leo", "Nora", "Omar", "Zoe", "Kofi", "Lena", "Raj", "Yuki"],
    "items": ["apples", "marbles", "stickers", "sweets", "cards", "coins", "balloons", "eggs", "pens", "shells"],
    "people": ["people", "passengers", "kids", "fans", "guests"],
    "vehicle": ["bus", "train", "boat", "tram"],
    "money": ["dollars", "euros", "pounds"],
    "gained": ["got", "bought", "found", "was given", "picked", "won", "collected"],
    "lost": ["gave away", "lost", "ate", "sold", "used", "gave my sister", "broke"],
}
# Other names learners use for a country, a city or a thing (the answer keeps the corpus' name).
ALIASES = {
    "the United Kingdom": ["the UK", "Britain", "the uk"],
    "the Netherlands": ["Holland", "the netherlands"],
    "South Korea": ["Korea"],
    "New York": ["NYC", "New York City"],
    "the sky on a clear day": ["the sky", "the sky on a sunny day", "a clear sky", "sky"],
    "grass": ["the grass", "fresh grass"],
    "snow": ["fresh snow", "the snow"],
    "a ripe banana": ["a banana", "bananas", "ripe bananas"],
    "a ripe tomato": ["a tomato", "tomatoes", "ripe tomatoes"],
    "coal": ["a lump of coal"],
    "an orange": ["oranges", "an orange (the fruit)"],
}
# The whole questions, for the other kinds: {country}, {animal}/{animals}, {thing}, {city}.
QUESTIONS = {
    "capital": [
        "{country} capital?",
        "capital city of {country}",
        "what is {country}'s capital called",
        "Which city is {country}'s capital?",
        "{country}'s capital city?",
        "What do they call the capital of {country}?",
        "Where is the capital of {country}?",
        "the capital of {country} please",
        "Is the capital of {country} a city you know? What is it?",
        "My friend and I disagree about the capital of {country}. What is it really?",
        "What is the capital of {country}?",
        "capital of {country}?",
        "What's {country}'s capital?",
        "Which city is the capital of {country}?",
        "Tell me the capital city of {country}.",
        "Do you know the capital of {country}?",
        "{country}: what is its capital?",
        "Name the capital of {country}.",
        "What city is the capital of {country}?",
        "whats the capital of {country}",
        "The capital of {country} is?",
        "I forgot the capital of {country}. What is it?",
        "what's {country}'s capital again?",
        "{country} capital",
        "capital city of {country} pls",
        "which city is the capital of {country}",
        "{country} - capital?",
        "the capital of {country}, what is it?",
        "my teacher asked me the capital of {country}. what is it?",
    ],
    "legs": [
        "{animal} legs?",
        "how many legs has a {animal}",
        "Does a {animal} have many legs? How many?",
        "What's the number of legs on a {animal}?",
        "legs on {animals}?",
        "How many legs (or arms) does a {animal} have?",
        "How many legs does a {animal} have?",
        "how many legs on a {animal}?",
        "Legs of a {animal}?",
        "How many legs do {animals} have?",
        "Count the legs of a {animal}.",
        "A {animal} has how many legs?",
        "Number of legs of a {animal}?",
        "How many legs has a {animal} got?",
        "how many legs does a {animal} walk on",
        "Tell me how many legs a {animal} has.",
        "{animals} have how many legs?",
        "how many legs do {animals} have",
        "a {animal} has how many legs",
        "how many legs is a {animal} supposed to have",
        "{animal} - how many legs?",
        "how many legs have {animals} got",
    ],
    "colour": [
        "{thing} is what colour?",
        "colour of {thing}?",
        "If I paint {thing}, which colour do I use?",
        "what colour would {thing} be",
        "Which colour do you see in {thing}?",
        "What colour is {thing}?",
        "what color is {thing}",
        "Which colour is {thing}?",
        "Tell me the colour of {thing}.",
        "What is the colour of {thing}?",
        "What color does {thing} have?",
        "{thing}: which colour?",
        "Do you know what colour {thing} is?",
        "{thing} - what colour would you say?",
        "what colur is {thing}",
        "tell me what colour {thing} is",
        "If I draw {thing}, which colour should I use?",
        "which crayon for {thing}?",
        "{thing}, what colour?",
    ],
    "city_fun": [
        "got a free afternoon in {city}, any suggestions?",
        "{city} ideas?",
        "What can a tourist do in {city}?",
        "Best thing to do in {city}?",
        "first time in {city}, what do I visit",
        "What is a fun thing to do in {city}?",
        "What should I see in {city}?",
        "Any tips for {city}?",
        "I'm going to {city}. What should I do there?",
        "Things to do in {city}?",
        "Recommend something to do in {city}.",
        "What's worth doing in {city}?",
        "I have a free day in {city}. Ideas?",
        "Planning a trip to {city}, what can I do?",
        "fun stuff to do in {city}?",
        "What would you do in {city}?",
        "Where should I go in {city}?",
        "{city} what to do",
        "{city} - what should I see?",
        "going to {city}, what is good to visit there",
        "visiting {city} for a weekend, any tips?",
        "any sights in {city} I should not miss?",
        "what to see in {city}",
        "what's a nice thing to do in {city} on holiday",
        "I'll be in {city} for a day, what can I do",
        "top sights in {city}?",
    ],
    "count": [
        "How many {units} are in {whole}?",
        "{units} in {whole}?",
        "how many {units} in {whole}",
        "How many {units} does {whole} have?",
        "{whole} has how many {units}?",
        "Number of {units} in {whole}?",
        "Tell me how many {units} make {whole}.",
        "how many {units} make {whole}",
        "Quick check: {whole} is how many {units}?",
        "Do you know how many {units} there are in {whole}?",
    ],
    "city_country": [
        "{city} is in what country",
        "country of {city}?",
        "Which country would I fly to for {city}?",
        "{city}, that's in which country again?",
        "Which country is {city} in?",
        "What country is {city} in?",
        "{city} is in which country?",
        "Where is {city}?",
        "In what country is {city}?",
        "Which country is the city of {city} in?",
        "{city}: which country?",
        "Tell me the country {city} is in.",
        "what country is {city} located in",
        "what country is {city} in again",
        "I'm going to {city} next month, what country is that in?",
        "{city}? which country",
        "which country has the city {city}",
        "{city} belongs to which country",
    ],
}
PLURALS = {"octopus": "octopuses", "bee": "bees", "ant": "ants"}
FILLERS = [
    "Hey, ",
    "Hi! ",
    "Quick question: ",
    "Hmm, ",
    "OK, ",
    "So, ",
    "Excuse me, ",
    "Hello, ",
    "Hey there, ",
    "Quick one: ",
    "I was wondering: ",
    "Sorry to bother you, ",
    "I always forget this one... ",
    "My kid asked me: ",
    "Random question: ",
    "For my homework: ",
    "Settle a bet: ",
]
# Said after the question.
AFTERTHOUGHTS = [" I never remember.", " Just curious.", " Thanks a lot!", " (for a quiz)", " I think I knew once."]
# Words learners often spell another way (British or American, or just wrong).
MISSPELLINGS = [("capital", "capitol"), ("colour", "color"), ("What", "Wat"), ("what", "wat"), ("How many", "How meny")]
POLITE = [" please", " Thanks!", " Thank you.", " Thanks in advance.", " if you can", " :)"]

# Each tool's one-line description, worded other ways (the template writes `name(args): description`).
TOOL_DESCRIPTIONS = {
    "add": [
        "Add two whole numbers.",
        "Return the sum a + b.",
        "Adds a and b together.",
        "Sum of two integers.",
        "Add the numbers a and b and return the total.",
        "Calculator: a plus b.",
    ],
    "subtract": [
        "Subtract the second whole number from the first.",
        "Return the difference a - b.",
        "Takes b away from a.",
        "Difference of two integers: a minus b.",
        "Subtract b from a.",
        "Calculator: a minus b.",
    ],
    "multiply": [
        "Multiply two whole numbers.",
        "Return the product a * b.",
        "Multiplies a by b.",
        "Product of two integers.",
        "Calculator: a times b.",
    ],
    "city_facts": [
        "Look up a city: the country it is in and two things to do there.",
        "Facts about a city: its country and things to do.",
        "Returns the country of a city and what to see there.",
        "City guide: country and two sights.",
        "Look up travel facts about a city.",
    ],
}


def _story(rng, kind, values):
    """An everyday story around the two numbers: a setup, then a question."""
    setups, endings = STORIES[kind]
    words = {k: rng.choice(v) for k, v in STORY_WORDS.items()}
    words["who"] = words["who"].format(name=words["name"])
    text = rng.choice(setups).format(**words, **values) + " " + rng.choice(endings)
    return text[0].upper() + text[1:]


def _frame(rng, kind, values):
    nouns, verbs = ARITHMETIC[kind]
    draw = rng.random()
    if draw < 0.2:
        return _story(rng, kind, values)
    if draw < 0.35:
        name, name2 = rng.sample(STORY_WORDS["name"], 2)
        return rng.choice(WHOLE[kind]).format(name=name, name2=name2, **values)
    if draw < 0.68:
        return rng.choice(NOUN_FRAMES).format(rng.choice(nouns).format(**values))
    frame = rng.choice(VERB_FRAMES)
    phrase = rng.choice(verbs).format(**values)
    return frame.format(phrase[0].upper() + phrase[1:] if frame.startswith("{}") else phrase)


def _name(rng, name):
    """`name` as a learner may write it: another name for it, or in lower case."""
    if name in ALIASES and rng.random() < 0.35:
        name = rng.choice(ALIASES[name])
    return name.lower() if rng.random() < 0.25 else name


def question(rng, slots):
    """A new question for what `slots` asks ({"kind": "sum", "a": 37, "b": 48}...)."""
    kind, values = slots["kind"], dict(slots)
    if kind in ARITHMETIC:
        text = _frame(rng, kind, values)
    else:
        if kind == "legs":
            values["animals"] = PLURALS.get(values["animal"], values["animal"] + "s")
        for key in ("country", "city", "thing"):
            if key in values:
                values[key] = _name(rng, values[key])
        text = rng.choice(QUESTIONS[kind]).format(**values)
        text = text.replace(" a octopus", " an octopus").replace(" a ant", " an ant")
    return text[0].upper() + text[1:] if rng.random() < 0.7 else text


def _typo(rng, text):
    """One small typo in a lower-case word of 4+ letters: two letters swapped, or one dropped."""
    words = [m for m in re.finditer(r"\b[a-z]{4,}\b", text)]
    if not words:
        return text
    m = rng.choice(words)
    w, i = m.group(0), rng.randrange(1, len(m.group(0)) - 1)
    w = w[:i] + w[i + 1] + w[i] + w[i + 2 :] if rng.random() < 0.5 else w[:i] + w[i + 1 :]
    return text[: m.start()] + w + text[m.end() :]


def surface(rng, text):
    """`text` as typed in a hurry: maybe a filler or politeness, lower case, no final mark, a typo."""
    if rng.random() < 0.25:
        text = rng.choice(FILLERS) + text[0].lower() + text[1:]
    if rng.random() < 0.12 and text[-1] in ".?":
        polite = rng.choice(POLITE)
        text = text[:-1] + polite + ("" if polite[-1] in ".!)" or rng.random() < 0.5 else text[-1])
    if rng.random() < 0.08 and text[-1] in ".?":
        text += rng.choice(AFTERTHOUGHTS)
    if rng.random() < 0.2:
        text = text.lower()
    if rng.random() < 0.25:
        text = text.rstrip("?.")
    if rng.random() < 0.12:
        text = _typo(rng, text)
    if rng.random() < 0.15:
        text = text.replace("'", "")  # "whats", "canadas capital"
    found = [pair for pair in MISSPELLINGS if pair[0] in text]
    if found and rng.random() < 0.1:
        right, wrong = rng.choice(found)
        text = text.replace(right, wrong, 1)
    return text


def rephrase(turn, rng):
    """The user's question of `turn` asked another way (its slots, if any, in a new frame; then typed)."""
    text = question(rng, turn.slots) if turn.slots and rng.random() < 0.8 else turn.user
    return surface(rng, text)


def tool_descriptions(rng, names):
    """A description for each tool in `names`, drawn from `TOOL_DESCRIPTIONS` (the first is the docstring's)."""
    return {name: rng.choice(TOOL_DESCRIPTIONS[name]) for name in names}
