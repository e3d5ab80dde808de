"""Captions in Chinese, Spanish and punctuation only train and validate
through tools/train.py (issue 20.4)."""
import json
import math
import re
from pathlib import Path

import torch

from .conftest import TINY, data_options, find_one, run_tool

TEXTS = ('一个男人在球场上跑步。', '¡El jugador está corriendo rápido!', '... !')


def _rewrite_captions(root: Path) -> None:
    """Every caption of the training and validation splits becomes one of
    TEXTS in turn, so every video has a Chinese, a Spanish or a
    punctuation-only caption."""
    for split in ('training', 'validation'):
        path = root / split / 'annotations' / 'video_captioning.json'
        entries = json.loads(path.read_text())
        for e, entry in enumerate(entries):
            for c, caption in enumerate(entry['captions']):
                caption['text'] = TEXTS[(e + c) % len(TEXTS)]
        path.write_text(json.dumps(entries, ensure_ascii=False))


def test_train_and_validate_captions_in_any_language(demo_copy, tmp_path):
    _rewrite_captions(Path(demo_copy))
    work = tmp_path / 'work'
    proc = run_tool('train.py', TINY, '--work-dir', work, '--cfg-options',
                    *data_options(demo_copy), 'train_cfg.max_epochs=1')
    output = proc.stdout + proc.stderr
    # the annotation check names the punctuation-only captions
    warning = re.search(
        r'validation/annotations/video_captioning\.json: \d+ caption\(s\) '
        r"have no words.*entry \d+ \(video_id='\w+'\): captions\[\d\] "
        r"'\.\.\. !'", output)
    assert warning, output[-3000:]
    log = find_one(work, '*.log').read_text()
    scores = dict(re.findall(r'caption/(\w+): (\S+)', log))
    for key in ('BLEU_4', 'CIDEr', 'ROUGE_L', 'num_segments'):
        assert key in scores, log[-3000:]
        assert math.isfinite(float(scores[key])), (key, scores[key])
    assert float(scores['num_segments']) > 0
    # the vocabulary has the words of both languages, accents kept
    meta = torch.load(work / 'epoch_1.pth', map_location='cpu',
                      weights_only=False)['meta']
    assert {'跑', '球', 'el', 'jugador', 'está', 'rápido'} <= set(
        meta['dataset_meta']['words'])
