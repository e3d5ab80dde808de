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


@pytest.mark.parametrize('caption,expected', PTB)
def test_hand_written_ptb_tokenisation(caption, expected):
    assert caption_words(caption) == expected.split()


@pytest.mark.parametrize('caption,expected,_', DIFFERENT)
def test_documented_differences(caption, expected, _):
    assert caption_words(caption) == expected.split()


@pytest.mark.parametrize('caption', [c for c, _ in PTB] +
                         [c for c, _, _ in DIFFERENT])
def test_idempotent_on_its_own_output(caption):
    # a decoded caption (words joined by spaces) is scored on its words
    words = caption_words(caption)
    assert caption_words(' '.join(words)) == words


@pytest.mark.skipif(shutil.which('java') is None,
                    reason='pycocoevalcap runs CoreNLP with java')
def test_equals_pycocoevalcap_ptb_tokenizer():
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    captions = [c for c, _ in PTB] + [c for c, _, _ in DIFFERENT]
    java = PTBTokenizer().tokenize(
        {str(i): [dict(caption=c)] for i, c in enumerate(captions)})
    for i, (caption, _) in enumerate(PTB):
        assert caption_words(caption) == java[str(i)][0].split(), caption
    for i, (caption, ours, theirs) in enumerate(DIFFERENT, len(PTB)):
        assert java[str(i)][0] == theirs, caption
        assert ' '.join(caption_words(caption)) == ours != theirs
