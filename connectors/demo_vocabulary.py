"""Word lists and sentence templates for the demo lake (written for tierlake; no external data)."""

NOUNS = """river mountain village harbour engine library theorem protein glacier market council bridge
orchestra telescope vaccine railway forest desert language treaty algorithm festival cathedral
reactor satellite cell molecule enzyme tariff province dynasty monastery painter novelist composer
physicist farmer merchant sailor soldier senator canal aqueduct lighthouse volcano island peninsula
valley plateau estuary delta coastline wetland meadow orchard vineyard quarry mine factory mill
workshop laboratory observatory museum archive university school hospital clinic pharmacy bakery
brewery fishery airport station tunnel highway pipeline dam reservoir battery circuit processor
compiler database network protocol sensor turbine furnace kiln loom printing_press manuscript
chronicle census ledger charter constitution parliament election referendum tax currency bank
guild union cooperative harvest drought flood earthquake storm eclipse comet asteroid planet galaxy
nebula species fossil mammal reptile insect bird fish fungus lichen moss fern grass wheat barley
rice maize potato coffee tea cotton wool silk copper iron tin gold silver salt marble granite
limestone basalt clay glass porcelain textile dye pigment ink paper parchment""".split()
NOUNS = [n.replace("_", " ") for n in NOUNS]

ADJECTIVES = """ancient modern northern southern eastern western coastal inland rural urban medieval
industrial agricultural volcanic tropical arid humid fertile remote prosperous modest famous obscure
influential controversial experimental theoretical practical durable fragile efficient costly
affordable rapid gradual sudden significant minor major complex simple elaborate careful detailed
broad narrow deep shallow steep gentle seasonal annual early late original revised public private
regional national international local traditional innovative stable volatile dense sparse
abundant scarce renewable reliable accurate precise""".split()

VERBS_PAST = """built founded described studied measured recorded published designed restored
expanded reduced replaced discovered mapped surveyed translated financed managed defended governed
analysed documented improved connected separated cultivated exported imported produced transformed
established abandoned rebuilt reformed reorganised protected excavated catalogued reviewed""".split()

PLACES = """Aldermoor Brackenfield Caelport Dunmere Eastholm Farrowdale Glenbrook Harwick Islemouth
Juniper_Bay Kestrel_Point Lowmarsh Merriford Northcombe Oakhaven Pellridge Quarrington Ravensgate
Stonebury Thistlewood Umberlee Valecrest Westmoor Yarrowby Zennor_Heath Ashcombe Birchley Coldharbour
Dovecliff Elmstead""".split()
PLACES = [p.replace("_", " ") for p in PLACES]

PEOPLE = """Ada_Marsh Bruno_Keller Clara_Osei Dmitri_Volkov Elena_Ruiz Farid_Haddad Grace_Lin
Hugo_Brandt Ines_Duarte Jonas_Berg Kiri_Walker Lena_Novak Mateo_Silva Nadia_Petrov Oscar_Lund
Priya_Nair Quentin_Hale Rosa_Moretti Samuel_Okafor Tara_Quinn""".split()
PEOPLE = [p.replace("_", " ") for p in PEOPLE]

PROSE_TEMPLATES = [
    "The {adj} {noun} of {place} was {verb} in {year} by {person}, who wanted to {goal}.",
    "According to records kept in the {noun2}, the {noun} {verb2} the {adj} economy of {place} for nearly {num} years.",
    "Historians still debate whether the {noun} was {verb} because of the {adj2} {noun2} or because of pressure from {place}.",
    "In {year}, {person} {verb} a {adj} study of the {noun}, noting that its {noun2} had changed more than expected.",
    "Visitors to {place} often remark on the {adj} {noun}, which stands a short walk from the old {noun2}.",
    "The {noun2} near {place} relied on the {noun} for {num} generations, until a {adj} {noun3} altered local trade.",
    "Modern surveys show that the {noun} covers about {num} square kilometres and supports a {adj} population of {noun3}s.",
    "{person} argued that the {adj} {noun} could only be understood by comparing it with the {noun2} of {place}.",
    "Because the {noun} was {adj}, engineers {verb} a second {noun2} upstream to protect the {noun3}.",
    "Today the {noun} is managed by a {adj} council that meets each spring in {place} to review the {noun2}.",
    "Early accounts describe the {noun} as {adj} and {adj2}, although later writers were less generous.",
    "The region's {noun3} industry grew quickly after the {noun} was {verb}, and by {year} it employed {num} workers.",
]
GOALS = [
    "improve trade with the coast",
    "protect the harvest from floods",
    "train a new generation of scholars",
    "settle a long dispute over land",
    "record the customs of the valley",
    "reduce the cost of transport",
    "preserve the surviving manuscripts",
    "measure the seasons more precisely",
]

QUESTION_TEMPLATES = [
    "How do I keep a {noun} from {problem} during {season}?",
    "Why does my {noun} {problem} after a few weeks?",
    "What is the best way to clean an old {noun} without damaging the {noun2}?",
    "Is it worth repairing a {adj} {noun}, or should I buy a new one?",
]
PROBLEMS = ["cracking", "rusting", "overheating", "losing colour", "leaking", "making a grinding noise"]
SEASONS = ["winter", "the rainy season", "a heatwave", "long journeys", "storage"]
ANSWER_TEMPLATES = [
    "In my experience the main cause is moisture, so store the {noun} somewhere dry and check the {noun2} every month.",
    "I had the same trouble with a {adj} {noun}. Replacing the {noun2} fixed it, and it cost less than I feared.",
    "Start with warm water and a soft brush, then dry the {noun} slowly. Avoid strong solvents on the {noun2}.",
    "A local workshop in {place} repaired mine for a modest fee. Ask them to inspect the {noun2} as well.",
    "It depends on how often you use it. For daily use a new {noun} is usually the cheaper choice over {num} years.",
]

BOILERPLATE = [
    "We use cookies to improve your experience. By continuing to browse you agree to our use of cookies. Accept all | Manage preferences | Privacy policy",
    "Home | About us | Services | Blog | Contact | Login | Register | Terms of use | Sitemap | © 2019 All rights reserved.",
    "Subscribe to our newsletter! Enter your email address below to receive the latest offers and updates. We never share your details.",
    "Share this article: Facebook Twitter LinkedIn Email Print. Related posts: Top ten tips | Latest news | Most popular this week",
    "This page could not be found. The link you followed may be broken, or the page may have been removed. Return to the homepage.",
]
SPAM_WORDS = [
    "cheap",
    "best",
    "discount",
    "buy",
    "online",
    "free",
    "shipping",
    "deal",
    "offer",
    "sale",
    "pills",
    "casino",
    "win",
    "bonus",
    "click",
    "now",
    "guaranteed",
    "loan",
    "fast",
    "cash",
]

CODE_SNIPPETS = [
    "def {fn}(items):\n    total = 0\n    for item in items:\n        if item.{attr} > {num}:\n            total += item.{attr}\n    return total\n",
    "class {cls}:\n    def __init__(self, {attr}):\n        self.{attr} = {attr}\n\n    def scaled(self, factor):\n        return {cls}(self.{attr} * factor)\n",
    "SELECT {attr}, COUNT(*) AS n\nFROM {table}\nWHERE {attr} > {num}\nGROUP BY {attr}\nORDER BY n DESC;\n",
    "function {fn}(list) {{\n  return list.filter(x => x.{attr} !== null).map(x => x.{attr} * {num});\n}}\n",
]
FUNCTION_NAMES = ["summarize_orders", "load_records", "filter_sensors", "merge_ledgers", "count_visits", "parse_census"]
ATTRS = ["price", "weight", "depth", "height", "volume", "count", "distance", "rating"]
CLASSES = ["Reading", "Shipment", "Parcel", "Survey", "Sample", "Invoice"]
TABLES = ["orders", "readings", "visits", "samples"]

MATH_ITEMS = ["apples", "notebooks", "bricks", "tickets", "marbles", "loaves of bread", "pencils", "seedlings"]
