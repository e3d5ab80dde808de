"""inference_video with an LLMHead (configs/llm/): the generated answer and
captions of a one-clip video are what the model's test_step writes, and
tools/inference.py prints them as JSON."""
import copy
import importlib.util
import json

import decord
import pytest
import torch
from mmengine.registry import DefaultScope

from hvlm.apis import inference_video, init_model
from hvlm.datasets.demo_data import _write_mp4
from hvlm.engine.runner import HVLMRunner
from tests.hf_causal_lms import save_tiny_lm
from tests.test_tools.conftest import REPO

TINY_LLM = str(REPO / 'tests' / 'data' / 'configs' / 'tiny_llm.py')
QUESTION = 'what does the person do?'


@pytest.fixture(scope='module')
def lm_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('tiny_llama'))
    save_tiny_lm(path, 'llama')
    return path


@pytest.fixture(scope='module')
def one_clip(tiny_demo_root, tmp_path_factory):
    """A video of exactly one clip of the config's test sampling (4 frames,
    3 apart), in a split directory without annotations."""
    src = decord.VideoReader(
        f'{tiny_demo_root}/test/videos/sports_test_0000.mp4')
    frames = src.get_batch(list(range(10))).asnumpy()
    split = tmp_path_factory.mktemp('llm_split')
    (split / 'videos').mkdir()
    path = split / 'videos' / 'one_clip.mp4'
    _write_mp4(str(path), frames, 10)
    return split, str(path)


def test_llm_head_answers_and_captions_as_in_the_test_loop(lm_dir,
                                                           one_clip,
                                                           tmp_path):
    split, video = one_clip
    options = {'model.head.heads.language.llm.pretrained': lm_dir}
    torch.manual_seed(0)
    model = init_model(TINY_LLM, None, cfg_options=options)
    # a checkpoint as training writes it, so that the tool reads the same
    # weights (the projector is random until trained)
    ckpt = tmp_path / 'model.pth'
    torch.save(dict(state_dict=model.state_dict(), meta={}), ckpt)
    result = inference_video(model, video, question=QUESTION,
                             progress=False, domain='sports')
    json.dumps(result)
    assert result['num_clips'] == 1
    qa = result['qa']
    assert qa['question'] == QUESTION and isinstance(qa['answer'], str)
    assert (qa['answer_id'], qa['score'], qa['top_k']) == (-1, None, [])
    captions = result['captioning']['captions']
    segments = result['action_detection']['segments']
    assert len(captions) == min(len(segments) or 1, 5)

    # the same clip through the config's test dataloader and test_step
    cfg = copy.deepcopy(model.cfg)
    loader = cfg.test_dataloader
    loader.dataset.update(data_root=str(split), domains=None)
    with DefaultScope.overwrite_default_scope('hvlm'):
        batch = next(iter(HVLMRunner.build_dataloader(loader.to_dict())))
    sample = batch['data_samples'][0]
    sample.questions = [QUESTION]
    sample.set_metainfo(dict(domain='sports'))
    with torch.no_grad():
        ref = model.test_step(batch)[0]
    assert qa['answer'] == ref.pred_qa[0]['answer']
    # the test loop captions the detected segments (no ground truth here),
    # the best scored first; inference clips them to the video's duration
    # (the prompt says the times: a clipped segment is another prompt) and
    # lists them in time order
    duration = result['duration']
    expected = sorted((c['start'], c['end'], c['text'])
                      for c in ref.pred_captions)
    got = sorted((c['start'], c['end'], c['text']) for c in captions)
    assert [g[:2] for g in got] == pytest.approx(
        [(min(b, duration), min(e, duration)) for b, e, _ in expected],
        abs=1e-3)
    # and with those clipped segments the head writes the same captions on
    # the test loop's features
    data = model.data_preprocessor(batch, False)
    clipped = data['data_samples'][0]
    clipped.pred_segments = torch.tensor([g[:2] for g in got])
    clipped.pred_segment_scores = torch.ones(len(got))
    with torch.no_grad():
        feats = model.extract_feat(data['inputs'], data['data_samples'])
        texts = model.head.heads['language'].predict(
            feats, [clipped], tasks=('video_captioning', ))[0].pred_captions
    assert [g[2] for g in got] == [c['text'] for c in texts]

    # tools/inference.py writes the same answer (its main() in this
    # process: its start-up costs more than the inference)
    spec = importlib.util.spec_from_file_location(
        'inference_tool', REPO / 'tools' / 'inference.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / 'result.json'
    tool.main([video, TINY_LLM, str(ckpt), '--question', QUESTION,
               '--domain', 'sports', '--out', str(out), '--no-progress',
               '--cfg-options',
               f'model.head.heads.language.llm.pretrained={lm_dir}'])
    written = json.loads(out.read_text())
    assert written['qa']['answer'] == qa['answer']
    assert [c['text'] for c in written['captioning']['captions']] == \
        [c['text'] for c in captions]


def test_llm_head_is_found_only_for_its_tasks(lm_dir, one_clip):
    options = {'model.head.heads.language.llm.pretrained': lm_dir,
               'model.head.heads.language.tasks': ('video_captioning', )}
    model = init_model(TINY_LLM, None, cfg_options=options)
    with pytest.raises(ValueError, match='VideoQAHead or LLMHead'):
        inference_video(model, one_clip[1], task='qa', question=QUESTION,
                        progress=False)
    result = inference_video(model, one_clip[1], progress=False)
    assert result['tasks'] == ['action_detection', 'captioning']
