#!/usr/bin/env bash
# Digests of what distillation writes, for proving that a change leaves results alone: for DM, DM+HDD, IDM,
# IDM+HDD, DANCE and DANCE+HDD at small sizes (embedded dataset, seed 0), the SHA-256 of the synthetic images'
# bytes, of the labels, of the checkpoint's momentum, and of every logged loss. Run it with two builds and diff the
# outputs:
#   bash benches/digests.sh target/release/hyperdistill > before.txt   # (old build)
#   bash benches/digests.sh target/release/hyperdistill > after.txt    # (new build); diff before.txt after.txt
# Only the tensors and losses are compared: file metadata (adapter, version, configuration text) is allowed to differ.
set -euo pipefail
bin=${1:-target/release/hyperdistill}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/run.toml" <<TOML
log_every = 1
checkpoint_every = 0
eval_every = 0
TOML
common=(--config "$work/run.toml" --ipc 2 --iterations 3 --width 8 --batch-real 16 --eval-nets 0 --seed 0)
for m in dm dm+hdd idm idm+hdd dance dance+hdd; do
    extra=()
    case $m in
        idm*) extra=(--net-num 3 --fetch-net-num 1 --model-train-steps 2 --net-batch 32) ;;
        dance*) extra=(--experts 2 --num-premodel 2 --expert-epochs 1 --expert-dir "$work/experts") ;;
    esac
    out="$work/${m/+/_}"
    "$bin" distill --method "$m" "${common[@]}" "${extra[@]}" --out "$out" >/dev/null 2>"$work/log" || { cat "$work/log" >&2; exit 1; }
    python3 - "$m" "$out" <<'PY'
import hashlib, json, struct, sys
method, out = sys.argv[1], sys.argv[2]
def tensors(path):
    b = open(path, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    head = json.loads(b[8:8 + n])
    return {k: b[8 + n + v['data_offsets'][0]:8 + n + v['data_offsets'][1]] for k, v in head.items() if k != '__metadata__'}
sha = lambda b: hashlib.sha256(b).hexdigest()[:16]
syn = tensors(f'{out}/synset.safetensors')
ck = tensors(f'{out}/checkpoint.safetensors')
losses = [(r['iteration'], r['loss'], r['per_class']) for r in map(json.loads, open(f'{out}/metrics.jsonl')) if r.get('event') == 'loss']
extra = sha(b''.join(ck[k] for k in sorted(ck) if k not in ('syn', 'momentum')))
print(f"{method:<10} images {sha(syn['images'])} labels {sha(syn['labels'])} momentum {sha(ck['momentum'])} state {extra} losses {sha(json.dumps(losses).encode())} last loss {losses[-1][1]!r}")
PY
done
