# The LLM head on the sports domain only: the comparison with the
# fixed-vocabulary heads of configs/hier_sports.py (same encoder, data,
# split and schedule; only the QA and caption heads differ). The LM is
# trained on the sports training text first:
#   python tools/misc/train_demo_lm.py configs/llm/llm_sports_stage1.py
# See docs/LANGUAGE_MODELS.md, "Learns, measured".
_base_ = ['./llm_demo_stage1.py']

domains = ['sports']
demo_lm = 'work_dirs/demo_lm_sports'
model = dict(head=dict(heads=dict(language=dict(llm=dict(
    pretrained=demo_lm)))))
train_dataloader = dict(dataset=dict(domains=domains))
val_dataloader = dict(dataset=dict(domains=domains))
test_dataloader = dict(dataset=dict(domains=domains))
