"""Regenerate the demo's example sets (deterministic): `python make_demo_data.py` in this folder.

Every row's gold label is what its text says to a speaker of its language: a reader of the demo's examples should
never have to take a label on trust. So there are no mixed-signal posts and no flipped labels. Label noise would stand
for annotators who disagree, but on template text a flipped label is simply wrong, and the demo shows dev rows to its
reader; the dev set's difficulty comes from what the model has not seen instead:

demo_posts.jsonl: replies labelled supportive (1) or dismissive (0), in en / it / es. Dev rows use phrasings never
seen in training, so the model is unsure on them, and the languages have different base rates (Italian replies are
mostly dismissive), so where a language's unsure posts fall differs: per-language thresholds matter.
demo_post_tags.jsonl: posts tagged with any of question / complaint / praise / request. demo_post_bio.jsonl: posts
that name a group in the third person (nothing in the post says whether the author belongs to it), labelled 1
("reclaimed") when the author's bio says they belong to the group, and 0 when it does not or when there is no bio: only
the bio decides (the reclamation setting, on a harmless word). demo_trust_type.jsonl: posts with a content type (news /
opinion / advert / question) and a trust label that is 1 ("unreliable") for about one post in six, like the imbalanced
trust head of the public multi-task card; an unreliable post always carries a tell-tale phrase, a reliable one a source
or nothing.

The last phrases of each list appear only in dev rows.
"""

import json
import random
from pathlib import Path

HERE = Path(__file__).parent
PHRASES = {
    "en": {
        1: [
            "you did a great job on this",
            "thanks for sharing, this really helps",
            "I am proud of you for speaking up",
            "keep going, you are doing fine",
            "this is brave and I support you",
            "sending you strength today",
            "your story matters to me",
            "well said, I agree with you",
            "you are not alone in this",
            "happy for you, congrats",
            "I hear you and I believe you",
            "what a kind thing to write",
            "this made my day, thank you",
            "you explained it so well",
        ],
        0: [
            "nobody asked for your opinion",
            "this is a waste of everyone's time",
            "stop posting this nonsense",
            "you clearly have no idea what you are saying",
            "what a boring take",
            "go away and read a book first",
            "this is the worst thread today",
            "you always complain about everything",
            "no one cares, honestly",
            "cringe post, delete it",
            "save it for someone who cares",
            "this is embarrassing to read",
            "you again, seriously?",
            "pointless, as usual",
        ],
    },
    "it": {
        1: [
            "hai fatto un ottimo lavoro",
            "grazie per averlo condiviso, aiuta tanto",
            "sono fiero di te",
            "continua così, stai andando bene",
            "ti sostengo, sei coraggiosa",
            "ti mando un abbraccio forte",
            "la tua storia è importante per me",
            "ben detto, sono d'accordo",
            "non sei sola",
            "felice per te, complimenti",
            "ti ascolto e ti credo",
            "che messaggio gentile",
            "mi hai migliorato la giornata, grazie",
            "l'hai spiegato benissimo",
        ],
        0: [
            "nessuno ha chiesto la tua opinione",
            "è una perdita di tempo per tutti",
            "smettila di scrivere sciocchezze",
            "non sai di cosa parli",
            "che discorso noioso",
            "prima vai a leggerti un libro",
            "il thread peggiore di oggi",
            "ti lamenti sempre di tutto",
            "non interessa a nessuno, davvero",
            "post imbarazzante, cancellalo",
            "raccontalo a qualcuno a cui interessa",
            "che imbarazzo leggerlo",
            "ancora tu, sul serio?",
            "inutile, come sempre",
        ],
    },
    "es": {
        1: [
            "hiciste un gran trabajo",
            "gracias por compartirlo, ayuda mucho",
            "estoy orgulloso de ti",
            "sigue así, lo estás haciendo bien",
            "te apoyo, eres valiente",
            "te mando mucha fuerza",
            "tu historia me importa",
            "bien dicho, estoy de acuerdo",
            "no estás sola en esto",
            "me alegro por ti, felicidades",
            "te escucho y te creo",
            "qué mensaje tan amable",
            "me alegraste el día, gracias",
            "lo explicaste muy bien",
        ],
        0: [
            "nadie pidió tu opinión",
            "esto es una pérdida de tiempo",
            "deja de publicar tonterías",
            "no tienes idea de lo que dices",
            "qué opinión tan aburrida",
            "antes vete a leer un libro",
            "el peor hilo de hoy",
            "siempre te quejas de todo",
            "a nadie le importa, la verdad",
            "publicación vergonzosa, bórrala",
            "guárdalo para quien le importe",
            "da vergüenza leerlo",
            "¿tú otra vez, en serio?",
            "inútil, como siempre",
        ],
    },
}
# Openers fit either label; closers depend on it ("lol" or "..." after a kind reply reads as mockery).
OPENERS = {
    "en": ["", "honestly, ", "wow, ", "ok, ", "look, "],
    "it": ["", "sinceramente, ", "wow, ", "allora, ", "senti, "],
    "es": ["", "sinceramente, ", "vaya, ", "bueno, ", "mira, "],
}
CLOSERS = {
    "en": {1: ["", " :)", "!", " <3"], 0: ["", "!", " lol", "..."]},
    "it": {1: ["", " :)", "!", " <3"], 0: ["", "!", " ahah", "..."]},
    "es": {1: ["", " :)", "!", " <3"], 0: ["", "!", " jaja", "..."]},
}
POSITIVE_RATE = {"en": 0.5, "it": 0.25, "es": 0.4}  # Italian replies are mostly dismissive in this sample
DEV_PHRASES = 4  # the last 4 phrases of each list appear only in dev
TAGS = {
    "question": [
        "is this still open?",
        "does anyone know the answer?",
        "why did this happen?",
        "what time is the meeting?",
        "who wrote this?",
        "where can I find the form?",
        "how long does it take?",
    ],
    "complaint": [
        "the app keeps crashing",
        "delivery was late again",
        "the support line never answers",
        "this update broke everything",
        "prices went up for no reason",
        "the train was cancelled twice",
        "my order arrived broken",
    ],
    "praise": [
        "great work by the team",
        "the new design looks amazing",
        "fantastic service today",
        "love this community",
        "the guide was super clear",
        "best update so far",
        "the staff were so kind",
    ],
    "request": [
        "please add a dark mode",
        "send me the link please",
        "please fix the login page",
        "share the slides please",
        "add more examples please",
        "please call me back",
        "please extend the deadline",
    ],
}

CONTENT = {
    "news": [
        "the council approved the new budget",
        "the bridge reopens on monday",
        "turnout reached sixty percent",
        "the museum extends its opening hours",
        "the storm closed two schools",
        "rail strikes end this week",
    ],
    "opinion": [
        "I think the new park is a mistake",
        "honestly the budget is too small",
        "in my view the mayor is right",
        "I believe we need more bike lanes",
        "the plan seems fair to me",
        "personally I liked the old logo",
    ],
    "advert": [
        "buy two and get one free",
        "limited offer on all shoes",
        "subscribe now for half price",
        "new phones in store today",
        "order today for free delivery",
        "join our gym this month",
    ],
    "question": [
        "does anyone know when the bus comes",
        "where can I vote on sunday",
        "what time does the office open",
        "who is running for mayor",
        "is the library open today",
        "how do I renew my permit",
    ],
}
RELIABLE = [
    "according to the official report",
    "the ministry confirmed it",
    "source: city press office",
    "as published in the gazette",
    "the data is on the open portal",
]
UNRELIABLE = [
    "share before they delete it!!!",
    "doctors hate this secret",
    "the media will never tell you",
    "100% true, my cousin saw it",
    "wake up people!!!",
]

# Group names in the third person: nothing in a post says whether its author belongs to the group.
GROUP_POSTS = {
    "en": [
        "classic {g} behaviour lol",
        "only {g} would understand this",
        "the {g} are at it again",
        "{g} will love this update",
        "this thread is full of {g}",
        "typical {g}, arguing about the rules for an hour",
    ],
    "it": [
        "tipico dei {g} ahah",
        "solo i {g} possono capirlo",
        "ecco di nuovo i {g}",
        "ai {g} piacerà questo aggiornamento",
        "questo thread è pieno di {g}",
        "tipici {g}, un'ora a discutere delle regole",
    ],
    "es": [
        "típico de {g} jaja",
        "solo los {g} entienden esto",
        "ya están otra vez los {g}",
        "a los {g} les va a encantar esta actualización",
        "este hilo está lleno de {g}",
        "típicos {g}, una hora discutiendo las reglas",
    ],
}
GROUPS = {
    "en": ["nerds", "gamers", "geeks"],
    "it": ["nerd", "gamer", "secchioni"],
    "es": ["frikis", "gamers", "empollones"],
}
# Bios that say the author is one of the group...
IN_GROUP_BIOS = {
    "en": [
        "one of the {g} since school",
        "president of the {g} club",
        "proud to be one of the {g}",
        "I build robots with my fellow {g}",
        "card games every friday with the other {g}",
    ],
    "it": [
        "uno dei {g} fin dalla scuola",
        "presidente del club dei {g}",
        "orgoglioso di essere uno dei {g}",
        "costruisco robot con gli altri {g}",
        "giochi di carte ogni venerdì con gli altri {g}",
    ],
    "es": [
        "uno de los {g} desde el colegio",
        "presidente del club de {g}",
        "orgulloso de ser uno de los {g}",
        "construyo robots con los demás {g}",
        "juegos de cartas cada viernes con los demás {g}",
    ],
}
# ... and bios that say nothing of it.
OUT_GROUP_BIOS = {
    "en": [
        "football dad, coffee lover",
        "marketing manager in Leeds",
        "I run marathons",
        "gardening and cats",
        "real estate agent, two kids",
    ],
    "it": [
        "papà calciatore, amo il caffè",
        "marketing manager a Milano",
        "corro maratone",
        "giardinaggio e gatti",
        "agente immobiliare, due figli",
    ],
    "es": [
        "padre futbolero, amante del café",
        "gerente de marketing en Sevilla",
        "corro maratones",
        "jardinería y gatos",
        "agente inmobiliario, dos hijos",
    ],
}


def main() -> None:
    rng = random.Random(2026)
    rows = []
    for lang, phrases in PHRASES.items():
        for split, count in (("train", 200), ("dev", 100)):
            for _ in range(count):
                label = int(rng.random() < POSITIVE_RATE[lang])
                pool = {y: p[:-DEV_PHRASES] if split == "train" else p[-DEV_PHRASES:] for y, p in phrases.items()}
                text = rng.choice(OPENERS[lang]) + rng.choice(pool[label]) + rng.choice(CLOSERS[lang][label])
                rows.append({"text": text, "lang": lang, "label": label, "split": split})
    rng.shuffle(rows)
    tagged = []
    names = list(TAGS)
    for split, count in (("train", 300), ("dev", 120)):
        for _ in range(count):
            labels = sorted(rng.sample(names, rng.choice([1, 1, 2, 2, 3])), key=names.index)
            parts = [rng.choice(TAGS[t][:-2] if split == "train" else TAGS[t][-2:]) for t in labels]
            rng.shuffle(parts)
            text = " ".join(part if part.endswith("?") else part + "." for part in parts)  # one sentence each
            tagged.append({"text": text, "labels": labels, "split": split})
    trust_type = []
    types = list(CONTENT)
    for split, count in (("train", 420), ("dev", 180)):
        for _ in range(count):
            type_label = rng.randrange(len(types))
            unreliable = int(rng.random() < 0.17)
            sentences = CONTENT[types[type_label]]
            text = rng.choice(sentences[:-2] if split == "train" else sentences[-2:])
            markers = UNRELIABLE if unreliable else RELIABLE
            # An unreliable post always shows why; a reliable one names its source or nothing. Dev markers are unseen.
            if unreliable or rng.random() < 0.75:
                text += ", " + rng.choice(markers[:-2] if split == "train" else markers[-2:])
            trust_type.append({"text": text, "label": unreliable, "type": types[type_label], "split": split})
    post_bio = []
    for split, count in (("train", 450), ("dev", 150)):
        for _ in range(count):
            lang = rng.choice(list(GROUP_POSTS))
            group = rng.choice(GROUPS[lang])
            in_group = rng.random() < 0.5
            bios = IN_GROUP_BIOS if in_group else OUT_GROUP_BIOS
            bio_choices = bios[lang][:-1] if split == "train" else bios[lang][-1:]
            posts = GROUP_POSTS[lang][:-1] if split == "train" else GROUP_POSTS[lang][-1:]
            bio = rng.choice(bio_choices).format(g=group) if rng.random() < 0.9 else None  # some authors have none
            label = int(in_group and bio is not None)  # without a bio, nothing says the author belongs
            post_bio.append(
                {"text": rng.choice(posts).format(g=group), "bio": bio, "lang": lang, "label": label, "split": split}
            )
    for name, data in (
        ("demo_posts.jsonl", rows),
        ("demo_post_bio.jsonl", post_bio),
        ("demo_post_tags.jsonl", tagged),
        ("demo_trust_type.jsonl", trust_type),
    ):
        with open(HERE / name, "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in data)


if __name__ == "__main__":
    main()
