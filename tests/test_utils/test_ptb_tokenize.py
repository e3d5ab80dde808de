import importlib.util
import os
import shutil

import pytest

from hvlm.utils.ptb_tokenize import caption_words

# Hand-written Penn Treebank tokenisations, lower-cased and with
# pycocoevalcap's punctuation list dropped; each is what CoreNLP 3.4.1
# gives (checked by test_equals_pycocoevalcap_ptb_tokenizer when Java is
# installed).
PTB = [
    ("The player's ball didn't go in.",
     "the player 's ball did n't go in"),
    ('A well-known man runs 1,000 meters in 3.5 minutes.',
     'a well-known man runs 1,000 meters in 3.5 minutes'),
    ('A man (in a red shirt) says "hello" to the crowd...',
     'a man -lrb- in a red shirt -rrb- says hello to the crowd'),
    ('He waits -- then jumps; she: laughs! Why? Because.',
     'he waits then jumps she laughs why because'),
    ('A café owner says él está aquí.', 'a café owner says él está aquí'),
    ('', ''),
    ('!!! ...', '!!!'),
    ('wow?! ok?? no!!', 'wow ?! ok ?? no !!'),
    ("They're gonna win, can't they? I'd cannot wanna.",
     "they 're gon na win ca n't they i 'd can not wan na"),
    ('Mr. Smith and Dr. Jones went to the U.S. today. Then they left.',
     'mr. smith and dr. jones went to the u.s. today then they left'),
    ('he went to the U.S.', 'he went to the u.s.'),
    ("'Quoted' text and `backticks' and ``double''",
     'quoted text and backticks and double'),
    ("The kids' toys, James' car.", 'the kids toys james car'),
    ('don\u2019t stop, it\u2019s John\u2019s', "do n't stop it 's john 's"),
    ('\u201cCurly quotes\u201d and \u2018single\u2019 \u2014 em dash '
     '\u2013 en dash \u2026 ellipsis',
     'curly quotes and single em dash en dash ellipsis'),
    ('[x] {y}', '-lsb- x -rsb- -lcb- y -rcb-'),
    ('50% of $3.50 & a/b a*b #1', '50 % of $ 3.50 & a/b a * b # 1'),
    ('Naïve résumé ÉCOLE Straße', 'naïve résumé école straße'),
    ('\u00bfQu\u00e9 tal? \u00a1Hola!', '\u00bf qu\u00e9 tal \u00a1 hola'),
    ('hello\tworld  multiple   spaces\nnew line',
     'hello world multiple spaces new line'),
    ('a man , walks ;; away :: now - then --- later',
     'a man walks away now then later'),
    ("Don't DON'T won't shouldn't've", "do n't do n't wo n't should n't 've"),
    ("don't! can't. isn't it?", "do n't ca n't is n't it"),
    ('rock & roll at AT&T', 'rock & roll at at&t'),
    ('bake at 350\u00b0F or 30 \u00b0C',
     'bake at 350 \u00b0 f or 30 \u00b0 c'),
    ('a ph.d. said no. then 5 ft. tall', 'a ph.d. said no then 5 ft. tall'),
]

# Where hvlm differs from CoreNLP on purpose (CJK, see the module
# docstring) or does not follow it: (caption, hvlm, CoreNLP via
# pycocoevalcap).
DIFFERENT = [
    ('一个男人在跑步。', '一 个 男 人 在 跑 步', '一个男人在跑步 。'),
    ('日本語のテキスト、한국어 텍스트', '日 本 語 の テ キ ス ト 한국어 텍스트',
     '日本語のテキスト 、 한국어 텍스트'),
    ('1/2 cup \u00bd', '1/2 cup \u00bd', '1/2 cup 1/2'),
    ('5 \u20ac', '5 \u20ac', '5 $'),
    ("rock'n'roll y'all 10:00am", "rock'n'roll y'all 10:00am",
     "rock 'n' roll y' all 10:00 am"),
    ('<tag> @me', '< tag > @ me', '<tag> @me'),
    ('emoji \U0001F600 here', 'emoji \U0001F600 here', 'emoji here'),
]


# Captions in the style of ActivityNet Captions, compared with the Java
# tokenizer only.
REAL = [
    'A young woman is seen speaking to the camera and leads into her '
    'putting on a pair of roller skates.',
    'The man then begins playing the harmonica while the camera captures '
    'his movements.',
    'A large group of people are seen standing around a field, while a man '
    'in a blue shirt throws a ball.',
    'Two teams play a game of volleyball on the beach; one team wins.',
    'The girl continues dancing around the room and ends by bowing to the '
    'audience.',
    "A man is shown standing behind a counter in a kitchen, and he's "
    "explaining how to cut an onion.",
    'People are shown riding horses down a dirt road (and a dog follows '
    'them).',
    'The video ends with the closing credits: "Thanks for watching!"',
    'A woman with a pony-tail does a back-flip on the mat... then she walks'
    ' off.',
    'He adds 2.5 cups of flour, 1/2 tsp. of salt, and mixes it -- then '
    'bakes it at 350 degrees.',
    "The children's coach explains the rules; the kids nod.",
    'A man wearing a U.S. Army uniform salutes the flag.',
    'The athlete lifts 200 lbs. over his head and drops it.',
    "A person's hands are seen putting together a puzzle on a table.",
    'The men shake hands, then they walk away from each other.',
    "A close-up of a cat's face is shown, and it's yawning.",
    "She says, 'Don't do that!' and laughs.",
    'Then, a man in a black T-shirt plays the drums -- very loudly.',
    'A boy kicks a soccer ball into the net; the crowd cheers!!',
    'The camera pans around the St. Louis arch at 5 p.m. on a sunny day.',
]


@pytest.mark.parametrize('caption,expected', PTB)
def test_hand_written_ptb_tokenisation(caption, expected):
    assert caption_words(caption) == expected.split()


@pytest.mark.parametrize('caption,expected,_', DIFFERENT)
def test_documented_differences(caption, expected, _):
    assert caption_words(caption) == expected.split()


@pytest.mark.parametrize('caption', [c for c, _ in PTB] + REAL +
                         [c for c, _, _ in DIFFERENT])
def test_idempotent_on_its_own_output(caption):
    # a decoded caption (words joined by spaces) is scored on its words
    words = caption_words(caption)
    assert caption_words(' '.join(words)) == words


def _java_ready() -> bool:
    # pycocoevalcap writes its input file next to its own module
    spec = importlib.util.find_spec('pycocoevalcap.tokenizer.ptbtokenizer')
    return shutil.which('java') is not None and spec is not None and \
        os.access(os.path.dirname(spec.origin), os.W_OK)


@pytest.mark.skipif(not _java_ready(),
                    reason='pycocoevalcap runs CoreNLP with java, writing '
                    'next to its module')
def test_equals_pycocoevalcap_ptb_tokenizer():
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    same = [c for c, _ in PTB] + REAL
    captions = same + [c for c, _, _ in DIFFERENT]
    java = PTBTokenizer().tokenize(
        {str(i): [dict(caption=c)] for i, c in enumerate(captions)})
    for i, caption in enumerate(same):
        assert caption_words(caption) == java[str(i)][0].split(), caption
    for i, (caption, ours, theirs) in enumerate(DIFFERENT, len(same)):
        assert java[str(i)][0] == theirs, caption
        assert ' '.join(caption_words(caption)) == ours != theirs
