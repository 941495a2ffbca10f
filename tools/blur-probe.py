#!/usr/bin/env python3
"""Does blur fool the classifier, and does the focus gate catch it? (docs/blur.txt)

  tools/blur-probe.py make runs/blur            # 25 test cells per class, blurred copies (PNG)
  for s in 0 1.5 3 5; do cargo run --release --bin cytolens -- classify --csv runs/blur/s$s > runs/blur/s$s.csv; done
  tools/blur-probe.py summary runs/blur         # accuracy and triage per blur

Cells are drawn (seeded) from the test split of ../shared/data/pbc/manifest.csv and blurred by
a Gaussian of sigma 0, 1.5, 3 and 5 px at 128 px (Pillow), saved as PNG in <dir>/s<sigma>/<class>/.
Needs Pillow.
"""
import csv, os, random, sys

SIGMAS = ('0', '1.5', '3', '5')


def make(out, data='../shared/data'):
    from PIL import Image, ImageFilter
    rows = [r for r in csv.DictReader(open(f'{data}/pbc/manifest.csv')) if r['split'] == 'test']
    random.seed(7)
    by = {}
    for r in rows:
        by.setdefault(r['label'], []).append(r)
    pick = [r for k in sorted(by) for r in random.sample(by[k], 25)]
    for sigma in SIGMAS:
        for r in pick:
            d = f"{out}/s{sigma}/{r['label']}"
            os.makedirs(d, exist_ok=True)
            im = Image.open(f"{data}/{r['path']}")
            if float(sigma):
                im = im.filter(ImageFilter.GaussianBlur(float(sigma)))
            im.save(f"{d}/" + os.path.basename(r['path']).replace('.jpg', '.png'))
    print(f'{len(pick)} cells at sigma {", ".join(SIGMAS)} in {out}')


def summary(out):
    print(f"{'sigma':>6} {'cells':>5} {'acc':>6} {'auto':>6} {'auto acc':>8} {'review':>6} {'anomaly':>7} {'colour flag':>11} {'focus flag':>10}")
    for s in SIGMAS:
        rows = [r for r in csv.DictReader(open(f'{out}/s{s}.csv')) if not r['error']]
        n = len(rows)
        true = lambda r: r['file'].split('/')[-2]
        auto = [r for r in rows if r['triage'] == 'auto']
        mean = lambda xs: sum(xs) / len(xs) if xs else float('nan')
        share = lambda pred: sum(map(pred, rows)) / n
        print(f"{s:>6} {n:>5} {mean([r['class'] == true(r) for r in rows]):6.3f} {len(auto) / n:6.3f} "
              f"{mean([r['class'] == true(r) for r in auto]):8.3f} {share(lambda r: r['triage'] == 'review'):6.3f} "
              f"{share(lambda r: r['triage'] == 'anomaly'):7.3f} {share(lambda r: r['unusual_colour'] == '1'):11.3f} "
              f"{share(lambda r: r.get('out_of_focus') == '1'):10.3f}")


if __name__ == '__main__':
    if len(sys.argv) != 3 or sys.argv[1] not in ('make', 'summary'):
        sys.exit(__doc__)
    (make if sys.argv[1] == 'make' else summary)(sys.argv[2])
