"""Time and peak memory of the attentions, forward + backward, against
FullAttention (SDPA) measured in the same run.

    python tools/analysis_tools/benchmark_attention.py \
        [--types PerformerAttention MambaLayer ...] \
        [--seq-lens 1024 4096 16384 65536] [--heads 8 --head-dim 64] \
        [--dtype fp32|bf16] [--device cpu|cuda] [--repeat 3] \
        [--mem-cap-mb 60000] [--timeout-s 900] [--out-json FILE]

Every type registered in ATTENTIONS is measured unless ``--types`` names
some. The logic lives in ``hvlm.analysis.attention_benchmark``.
"""
import argparse
import json

import hvlm.models  # noqa: F401
from hvlm.analysis.attention_benchmark import (BASELINE, benchmark,
                                             format_table)
from hvlm.registry import ATTENTIONS


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--types', nargs='+', help='attention types '
                        '(default: every type registered in ATTENTIONS)')
    parser.add_argument('--seq-lens', type=int, nargs='+',
                        default=[1024, 4096, 16384, 65536])
    parser.add_argument('--full-max-len', type=int, default=16384,
                        help=f'longest sequence for {BASELINE}')
    parser.add_argument('--heads', type=int, default=8)
    parser.add_argument('--head-dim', type=int, default=64)
    parser.add_argument('--dtype', choices=['fp32', 'bf16'], default='fp32')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--threads', type=int, help='torch CPU threads')
    parser.add_argument('--mem-cap-mb', type=float,
                        help='skip a case that needs more memory than this')
    parser.add_argument('--timeout-s', type=float,
                        help='skip a case that runs longer than this')
    parser.add_argument('--cfg', action='append', default=[],
                        metavar='TYPE:JSON', help='extra config of a type, '
                        'e.g. \'PerformerAttention:{"nb_features": 128}\'')
    parser.add_argument('--out-json', help='write the rows here')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    types = args.types or sorted(ATTENTIONS.module_dict)
    unknown = [t for t in types if t not in ATTENTIONS.module_dict]
    if unknown:
        raise SystemExit(f'--types {unknown} not registered; known: '
                         f'{sorted(ATTENTIONS.module_dict)}')
    extra = {}
    for item in args.cfg:
        name, _, text = item.partition(':')
        extra[name] = json.loads(text)
    print(f'device={args.device} dtype={args.dtype} B=1 '
          f'heads={args.heads}x{args.head_dim}; forward+backward, median of '
          f'{args.repeat}; *_vs_full relative to {BASELINE} (SDPA) at the '
          'same length, in this run')
    rows = benchmark(
        types, args.seq_lens, full_max_len=args.full_max_len,
        mem_cap_mb=args.mem_cap_mb, timeout_s=args.timeout_s,
        extra_cfgs=extra, num_heads=args.heads, head_dims=args.head_dim,
        dtype=args.dtype, device=args.device, repeat=args.repeat,
        threads=args.threads, log=lambda line: print(line, flush=True))
    methods = sorted({r['memory_method'] for r in rows if 'memory_method' in r})
    print('\n' + format_table(rows))
    print(f'peak memory: {"; ".join(methods)}')
    if args.out_json:
        with open(args.out_json, 'w') as f:
            json.dump(dict(device=args.device, dtype=args.dtype,
                           heads=args.heads, head_dim=args.head_dim,
                           memory_method=methods, rows=rows), f, indent=1)
        print(f'wrote {args.out_json}')


if __name__ == '__main__':
    main()
