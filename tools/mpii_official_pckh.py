#!/usr/bin/env python3
"""A line-by-line port of the official MPII PCKh evaluation (eval_PCKh.py of pytorch-pose /
HRNet mpii.evaluate: SC_BIAS 0.6, strict threshold, jnt_missing) in plain Python (no numpy or
scipy), run on the predictions `pos_pred_src` stored in the official truth file itself. It gave
the expected numbers of tests/test_infer.cpp (Eval.ReproducesTheOfficialMpiiEvaluation).

    tools/mpii_official_pckh.py tests/data/mpii/annot/gt_valid_official.mat
"""
import json, math, struct, sys, zlib
TYPES={1:'b',2:'B',3:'h',4:'H',5:'i',6:'I',7:'f',9:'d',12:'q',13:'Q'}
def elements(buf, off=0, end=None):
    end = len(buf) if end is None else end
    while off < end:
        t, n = struct.unpack_from('<II', buf, off)
        if t >> 16:  # small element
            n = t >> 16; t &= 0xffff
            yield t, buf[off+4:off+4+n]; off += 8
        else:
            yield t, buf[off+8:off+8+n]; off += 8 + (n if t == 15 else ((n + 7) // 8) * 8)
def matrix(data):
    els = list(elements(data))
    flags = struct.unpack_from('<I', els[0][1])[0]; cls = flags & 0xff
    dims = struct.unpack('<%di' % (len(els[1][1])//4), els[1][1])
    name = els[2][1].decode()
    if cls in (6,7,8,9,10,11,12,13,14,15):
        t, raw = els[3]
        vals = struct.unpack('<%d%s' % (len(raw)//struct.calcsize(TYPES[t]), TYPES[t]), raw)
        return name, dims, vals
    return name, dims, None
def load(path):
    buf = open(path,'rb').read()
    out = {}
    for t, d in elements(buf, 128):
        if t == 15: d = zlib.decompress(d); t, d = next(elements(d))
        if t == 14:
            name, dims, vals = matrix(d); out[name] = (dims, vals)
    return out


def pckh(m, thr):
    miss, pred, gt, hb = (m[k][1] for k in ('jnt_missing', 'pos_pred_src', 'pos_gt_src', 'headboxes_src'))
    n = m['jnt_missing'][0][1]
    P = lambda a, j, c, i: a[j + 16 * (c + 2 * i)]  # MATLAB column-major
    H = lambda r, c, i: hb[r + 2 * (c + 2 * i)]
    hits, cnt = [0] * 16, [0] * 16
    for i in range(n):
        hs = 0.6 * math.hypot(H(1, 0, i) - H(0, 0, i), H(1, 1, i) - H(0, 1, i))
        for j in range(16):
            if miss[j + 16 * i]:
                continue
            e = math.hypot(P(pred, j, 0, i) - P(gt, j, 0, i), P(pred, j, 1, i) - P(gt, j, 1, i))
            cnt[j] += 1
            hits[j] += e / hs < thr
    pck = [100 * h / c for h, c in zip(hits, cnt)]
    keep = [j for j in range(16) if j not in (6, 7)]  # no pelvis, thorax
    return dict(head=pck[9], shoulder=(pck[12] + pck[13]) / 2, elbow=(pck[11] + pck[14]) / 2,
                wrist=(pck[10] + pck[15]) / 2, hip=(pck[2] + pck[3]) / 2,
                knee=(pck[1] + pck[4]) / 2, ankle=(pck[0] + pck[5]) / 2,
                mean=sum(pck[j] for j in keep) / 14,
                mean_weighted=sum(pck[j] * cnt[j] for j in keep) / sum(cnt[j] for j in keep))


if __name__ == '__main__':
    m = load(sys.argv[1])
    print(json.dumps({'pckh@0.5': pckh(m, 0.5), 'pckh@0.1': pckh(m, 0.1)}, indent=1))
