#!/usr/bin/env bash
# What splitting a distillation into N class shards costs on one machine. For N = 1, 2, 4 the shards run one after
# another as processes, each twice: for A and for B iterations. From the two wall times, per shard:
#   fixed s   = what a shard pays once (process start, dataset load, pipeline creation, first-use compilation),
#               the intercept of wall time against iterations;
#   s/it      = the marginal cost of one iteration of this shard (IDM: every shard trains the whole queue);
#   peak MiB  = the largest resident set of the two processes (/usr/bin/time).
# Prints a table; the numbers and the projection made from them are in benches/NOTES.md.
#   bash benches/shard_overhead.sh [BINARY] [DATASET] [A_DM B_DM] [A_IDM B_IDM]
# METHODS="dm+hdd" limits the methods measured (default: dm+hdd idm+hdd).
set -euo pipefail
bin=${1:-target/release/hyperdistill}
dataset=${2:-embedded}
a_dm=${3:-10}; b_dm=${4:-30}
a_idm=${5:-2}; b_idm=${6:-6}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
common=(--ipc 10 --width 32 --batch-real 64 --eval-nets 0 --seed 1 --dataset "$dataset")
echo "dataset $dataset; ipc 10, width 32, batch_real 64; adapter: $("$bin" info 2>&1 | sed -n 's/^adapter:* *//p' | head -1)"
printf '%-8s %2s %5s %8s %8s %9s\n' method N shard "fixed s" "s/it" "peak MiB"
for m in ${METHODS:-dm+hdd idm+hdd}; do
    a=$a_dm b=$b_dm
    [ "$m" = idm+hdd ] && a=$a_idm b=$b_idm
    for n in 1 2 4; do
        for ((i = 0; i < n; i++)); do
            walls=() rss=()
            for it in "$a" "$b"; do
                args=(distill --method "$m" --iterations "$it" "${common[@]}" --out "$work/$m-$n-$it")
                [ "$n" -gt 1 ] && args+=(--shard "$i/$n")
                /usr/bin/time -f '%e %M' -o "$work/time" "$bin" "${args[@]}" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
                read -r w k <"$work/time"
                walls+=("$w") rss+=("$k")
            done
            python3 -c "
a, b, wa, wb = $a, $b, ${walls[0]}, ${walls[1]}
per = (wb - wa) / (b - a)
print('%-8s %2d %5s %8.2f %8.3f %9.0f' % ('$m', $n, '$i/$n', wa - a * per, per, max(${rss[0]}, ${rss[1]}) / 1024))"
        done
    done
done
