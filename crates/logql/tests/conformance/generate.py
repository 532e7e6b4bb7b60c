#!/usr/bin/env python3
"""Generates the LogQL conformance case files (*.json) in this directory.

Expected results are computed by the small, independent Python model of
Loki's documented semantics below (windows (t-range-offset, t-offset],
step alignment, vector matching, ...), never by the Rust engine. Run
`python3 generate.py` after editing; commit the JSON files.
"""
import json, math, os, re

T0 = 1704067200  # 2024-01-01T00:00:00Z
S = 10**9
HERE = os.path.dirname(os.path.abspath(__file__))

def ns(sec):
    return str(int(round((T0 + sec) * S)))

def fmt(v):
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    if v == math.inf:
        return "+Inf"
    if v == -math.inf:
        return "-Inf"
    if float(v).is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(float(v))

def lf(level, method, path, status, latency_ms, size):
    return f'level={level} method={method} path={path} status={status} latency={latency_ms}ms size={size}B'

# ---------------------------------------------------------------- dataset
def build_streams():
    st = []
    a = []
    for i in range(12):
        a.append((5 + 10 * i, lf("info", "GET", f"/a/{i}", 200, 10 + i, 100 + 10 * i)))
    st.append(({"app": "api", "env": "prod", "level": "info"}, a))
    b = [(7, lf("error", "POST", "/b", 500, 250, 20)), (37, lf("error", "POST", "/b", 503, 300, 30)),
         (67, lf("error", "GET", "/b", 500, 350, 40)), (97, lf("error", "GET", "/b", 502, 400, 50))]
    st.append(({"app": "api", "env": "prod", "level": "error"}, b))
    c = [(3, lf("info", "GET", "/", 200, 5, 1000)), (33, lf("info", "GET", "/", 200, 6, 2000)),
         (63, lf("info", "GET", "/x", 404, 7, 3000)), (93, lf("info", "GET", "/", 200, 8, 4000))]
    st.append(({"app": "web", "env": "dev", "level": "info"}, c))
    d = [(50, lf("warn", "GET", "/slow", 200, 900, 10)), (51, lf("warn", "GET", "/slow", 200, 950, 10)),
         (52, lf("warn", "GET", "/slow", 200, 1000, 10))]
    st.append(({"app": "web", "env": "prod", "level": "warn"}, d))
    e = [(10 + 20 * i, f"counter tick {i}") for i in range(6)]
    st.append(({"app": "batch", "env": "prod", "shard": "7", "host": "h-1"}, e))
    return st

STREAMS = build_streams()

def streams_json(streams):
    return [{"stream": lbl, "values": [[ns(t), line] for t, line in entries]} for lbl, entries in streams]

def parse_logfmt(line):
    out = {}
    for tok in line.split(" "):
        if "=" in tok:
            k, v = tok.split("=", 1)
            out[k] = v
    return out

def go_duration_s(v):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", v)
    mult = {"ms": 1e-3, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    return float(m.group(1)) * mult

def parse_bytes(v):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Za-z]*)", v)
    mult = {"": 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 1e6}[m.group(2).lower()]
    return float(m.group(1)) * mult

# ---------------------------------------------------------------- model
def key(d):
    return tuple(sorted(d.items()))

def select(pred, streams=None):
    return [(l, e) for l, e in (streams or STREAMS) if pred(l)]

def eq(**kw):
    return lambda l: all(l.get(k, "") == v for k, v in kw.items())

def steps_range(start, end, step):
    s = math.floor(start / step) * step
    e = math.ceil(end / step) * step
    out = []
    t = s
    while t <= e + 1e-9:
        out.append(round(t, 6))
        t += step
    return out

def extract(streams, value=lambda lbl, line: 1.0, labels=lambda lbl, line: lbl, line_filter=lambda line: True):
    series = {}
    for lbl, entries in streams:
        for t, line in entries:
            if not line_filter(line):
                continue
            v = value(lbl, line)
            if v is None:
                continue
            series.setdefault(key(labels(lbl, line)), []).append((t, v))
    for k in series:
        series[k].sort(key=lambda p: p[0])
    return series

def range_eval(series, steps, rng, fn, offset=0):
    out = {}
    for t in steps:
        for k, pts in series.items():
            w = [v for (ts, v) in pts if t - offset - rng < ts <= t - offset]
            if w:
                out.setdefault(k, []).append((t, fn(w, rng)))
    return out

def f_count(w, r): return float(len(w))
def f_rate(w, r): return len(w) / r
def f_sum(w, r): return float(sum(w))
def f_sumrate(w, r): return sum(w) / r
def f_avg(w, r): return sum(w) / len(w)
def f_min(w, r): return float(min(w))
def f_max(w, r): return float(max(w))
def f_stdvar(w, r):
    m = sum(w) / len(w)
    return sum((x - m) ** 2 for x in w) / len(w)
def f_stddev(w, r): return math.sqrt(f_stdvar(w, r))
def f_first(w, r): return float(w[0])
def f_last(w, r): return float(w[-1])
def f_quantile(q):
    def f(w, r):
        v = sorted(w)
        if q < 0: return -math.inf
        if q > 1: return math.inf
        rank = q * (len(v) - 1)
        lo = max(0, math.floor(rank)); hi = min(len(v) - 1, lo + 1)
        wt = rank - math.floor(rank)
        return v[lo] * (1 - wt) + v[hi] * wt
    return f

def vagg(matrix, op, by=None, without=None):
    groups = {}
    for k, pts in matrix.items():
        d = dict(k)
        if without is not None:
            g = {a: b for a, b in d.items() if a not in without}
        else:
            g = {a: b for a, b in d.items() if a in (by or [])}
        for t, v in pts:
            groups.setdefault(key(g), {}).setdefault(t, []).append(v)
    out = {}
    for g, byt in groups.items():
        for t in sorted(byt):
            vs = byt[t]
            if op == "sum": r = sum(vs)
            elif op == "avg": r = sum(vs) / len(vs)
            elif op == "min": r = min(vs)
            elif op == "max": r = max(vs)
            elif op == "count": r = len(vs)
            elif op in ("stdvar", "stddev"):
                m = sum(vs) / len(vs)
                r = sum((x - m) ** 2 for x in vs) / len(vs)
                if op == "stddev": r = math.sqrt(r)
            out.setdefault(g, []).append((t, float(r)))
    return out

def topk(matrix, k, by=None, bottom=False):
    per_t = {}
    for lk in sorted(matrix):
        for t, v in matrix[lk]:
            g = key({a: b for a, b in dict(lk).items() if a in (by or [])})
            per_t.setdefault((t, g), []).append((lk, v))
    out = {}
    for (t, g), items in per_t.items():
        items = sorted(items, key=lambda x: (x[1] if bottom else -x[1]))  # stable: label order on ties
        for lk, v in items[:k]:
            out.setdefault(lk, []).append((t, v))
    for lk in out:
        out[lk].sort()
    return out

def mapv(matrix, f):
    out = {}
    for k, pts in matrix.items():
        np = [(t, f(v)) for t, v in pts if f(v) is not None]
        if np:
            out[k] = np
    return out

def binop(lhs, rhs, f, on=None, ignoring=None, keep="lhs", group=False):
    """One-to-one (or many-to-one with group=True) vector matching; f returns None to drop.
    One-to-one results keep only the on() labels / drop the ignoring() labels (Prometheus resultMetric)."""
    def sig(k):
        d = dict(k)
        if on is not None: d = {a: b for a, b in d.items() if a in on}
        if ignoring is not None: d = {a: b for a, b in d.items() if a not in ignoring}
        return key(d)
    out = {}
    rmap = {}
    for k, pts in rhs.items():
        for t, v in pts:
            rmap[(sig(k), t)] = (k, v)
    for k, pts in lhs.items():
        for t, v in pts:
            if (sig(k), t) not in rmap:
                continue
            rk, rv = rmap[(sig(k), t)]
            r = f(v, rv)
            if r is None:
                continue
            lk = k
            if not group and (on is not None or ignoring is not None):
                lk = sig(k)
            out.setdefault(lk, []).append((t, r))
    return out

def matrix_json(m):
    return {"resultType": "matrix", "result": [
        {"metric": dict(k), "values": [[T0 + t, fmt(v)] for t, v in m[k]]} for k in sorted(m)]}

def vector_json(m, t, sort=None):
    items = []
    for k in sorted(m):
        for tt, v in m[k]:
            if abs(tt - t) < 1e-9:
                items.append((k, v))
    if sort == "asc": items.sort(key=lambda x: x[1])
    if sort == "desc": items.sort(key=lambda x: -x[1])
    return {"resultType": "vector", "result": [{"metric": dict(k), "value": [T0 + t, fmt(v)]} for k, v in items]}

def streams_result(streams):
    return {"resultType": "streams", "result": [{"stream": l, "values": [[ns(t), line] for t, line in e]} for l, e in streams]}

# ---------------------------------------------------------------- case files
FILES = {}

def case(file, name, query, expected, **params):
    c = {"name": name, "query": query}
    if params.get("kind") == "instant":
        c["kind"] = "instant"
        c["time"] = ns(params.pop("time"))
        params.pop("kind")
    else:
        params.pop("kind", None)
        c["start"] = ns(params.pop("start", 0))
        c["end"] = ns(params.pop("end", 120))
    for k in ("step", "interval", "limit", "direction", "max_query_series", "streams"):
        if k in params:
            c[k] = params.pop(k)
    assert not params, params
    c["expected"] = expected
    FILES.setdefault(file, []).append(c)

def err(text, status=400):
    return {"status": status, "error": text}

def api(): return select(eq(app="api"))
def all_streams(): return select(lambda l: l.get("env", "") != "")

# ---- 1. range aggregations without unwrap
R = "01_range_aggregations.json"
ops = [("count_over_time", f_count, None), ("rate", f_rate, None),
       ("bytes_over_time", f_sum, "bytes"), ("bytes_rate", f_sumrate, "bytes")]
windows = [(30, 30), (60, 30), (20, 40), (15, 10)]
selectors = [('{app="api"}', eq(app="api")), ('{env="prod"}', eq(env="prod")), ('{app=~"web|batch"}', lambda l: l["app"] in ("web", "batch"))]
for opname, fn, val in ops:
    for rng, step in windows:
        for qsel, pred in selectors:
            value = (lambda l, line: float(len(line))) if val == "bytes" else (lambda l, line: 1.0)
            series = extract(select(pred), value=value)
            steps = steps_range(0, 120, step)
            m = range_eval(series, steps, rng, fn)
            q = f"{opname}({qsel}[{rng}s])"
            case(R, f"{q} step {step}s", q, matrix_json(m), start=0, end=120, step=f"{step}s")
# offsets
for off in (10, 30, 60):
    series = extract(api())
    steps = steps_range(60, 120, 30)
    m = range_eval(series, steps, 30, f_count, offset=off)
    q = f'count_over_time({{app="api"}}[30s] offset {off}s)'
    case(R, f"offset {off}s", q, matrix_json(m), start=60, end=120, step="30s")
# line filters
for flt, pyf in [('|= "POST"', lambda x: "POST" in x), ('!= "GET"', lambda x: "GET" not in x),
                 ('|~ "status=50[0-3]"', lambda x: re.search("status=50[0-3]", x) is not None),
                 ('!~ "latency=1[0-9]ms"', lambda x: re.search("latency=1[0-9]ms", x) is None),
                 ('|= "GET" |= "/a/1"', lambda x: "GET" in x and "/a/1" in x)]:
    series = extract(all_streams(), line_filter=pyf)
    m = range_eval(series, steps_range(0, 120, 60), 60, f_count)
    q = f'count_over_time({{env=~".+"}} {flt} [1m])'
    case(R, f"line filter {flt}", q, matrix_json(m), start=0, end=120, step="60s")
# label filter + drop on stream labels
series = extract(select(lambda l: l.get("env") == "prod" and l.get("level") != "error"))
case(R, "label filter on stream label", 'count_over_time({env="prod"} | level!="error" [1m])',
     matrix_json(range_eval(series, steps_range(0, 120, 60), 60, f_count)), start=0, end=120, step="60s")
series = extract(select(eq(app="api")), labels=lambda l, line: {k: v for k, v in l.items() if k != "level"})
case(R, "drop merges streams", 'count_over_time({app="api"} | drop level [1m])',
     matrix_json(range_eval(series, steps_range(0, 120, 60), 60, f_count)), start=0, end=120, step="60s")
series = extract(select(eq(env="prod")), labels=lambda l, line: {"app": l["app"]})
case(R, "keep merges streams", 'count_over_time({env="prod"} | keep app [1m])',
     matrix_json(range_eval(series, steps_range(0, 120, 60), 60, f_count)), start=0, end=120, step="60s")
# absent_over_time
case(R, "absent_over_time with data at every step", 'absent_over_time({app="api"}[1m])', matrix_json({}), start=60, end=120, step="30s")
case(R, "absent_over_time no such stream", 'absent_over_time({app="nope", env="x"}[1m])',
     matrix_json({key({"app": "nope", "env": "x"}): [(t, 1.0) for t in steps_range(0, 120, 60)]}), start=0, end=120, step="60s")
case(R, "absent_over_time drops regex matcher labels", 'absent_over_time({app="nope", env=~"x|y"}[1m])',
     matrix_json({key({"app": "nope"}): [(t, 1.0) for t in steps_range(0, 120, 60)]}), start=0, end=120, step="60s")
case(R, "absent_over_time duplicate equality matcher", 'absent_over_time({app="nope", app="other"}[1m])',
     matrix_json({(): [(t, 1.0) for t in steps_range(0, 60, 60)]}), start=0, end=60, step="60s")
sm = extract(select(eq(app="web", level="warn")))
steps = steps_range(0, 300, 60)
present = {t for t, _ in range_eval(sm, steps, 60, f_count).get(key({"app": "web", "env": "prod", "level": "warn"}), [])}
case(R, "absent_over_time gaps", 'absent_over_time({app="web", level="warn"}[1m])',
     matrix_json({key({"app": "web", "level": "warn"}): [(t, 1.0) for t in steps if t not in present]}), start=0, end=300, step="60s")
case(R, "absent_over_time instant present", 'absent_over_time({app="api"}[1m])', vector_json({}, 60), kind="instant", time=60)
case(R, "absent_over_time instant absent", 'absent_over_time({app="api"}[1m])',
     vector_json({key({"app": "api"}): [(300, 1.0)]}, 300), kind="instant", time=300)

# ---- 2. unwrap
U = "02_unwrap.json"
lat = lambda l, line: go_duration_s(parse_logfmt(line)["latency"]) if "latency" in parse_logfmt(line) else None
size = lambda l, line: parse_bytes(parse_logfmt(line)["size"]) if "size" in parse_logfmt(line) else None
status = lambda l, line: float(parse_logfmt(line)["status"]) if "status" in parse_logfmt(line) else None
def plabels(l, line):
    # extracted keys clashing with stream labels get the _extracted suffix
    d = dict(l)
    for k, v in parse_logfmt(line).items():
        d[k + "_extracted" if k in l else k] = v
    return d
def minus(*names):
    return lambda l, line: {k: v for k, v in plabels(l, line).items() if k not in names}
uops = [("sum_over_time", f_sum), ("avg_over_time", f_avg), ("min_over_time", f_min), ("max_over_time", f_max),
        ("stdvar_over_time", f_stdvar), ("stddev_over_time", f_stddev), ("first_over_time", f_first),
        ("last_over_time", f_last), ("rate", f_sumrate)]
for opname, fn in uops:
    series = extract(api(), value=status, labels=lambda l, line: {k: v for k, v in l.items()})
    case(U, f"{opname} unwrap stream-label-free numeric (logfmt status, by level)",
         f'{opname}({{app="api"}} | logfmt | unwrap status [1m]) by (level)' if opname not in ("sum_over_time", "rate") else f'sum by (level) ({opname}({{app="api"}} | logfmt | unwrap status [1m]))',
         matrix_json(vagg(range_eval(extract(api(), value=status, labels=lambda l, line: {"level": l["level"]}), steps_range(0, 120, 60), 60, fn), "sum", by=["level"])) if opname in ("sum_over_time", "rate") else
         matrix_json(range_eval(extract(api(), value=status, labels=lambda l, line: {"level": l["level"]}), steps_range(0, 120, 60), 60, fn)),
         start=0, end=120, step="60s")
for conv, pyf, q in [("duration", lat, 'duration(latency)'), ("duration_seconds", lat, 'duration_seconds(latency)'), ("bytes", size, 'bytes(size)')]:
    for opname, fn in [("sum_over_time", f_sum), ("max_over_time", f_max), ("avg_over_time", f_avg)]:
        series = extract(select(eq(app="web")), value=pyf, labels=lambda l, line: {"app": l["app"], "env": l["env"]})
        qq = f'sum by (app, env) ({opname}({{app="web"}} | logfmt | unwrap {q} [2m]))' if opname == "sum_over_time" else f'{opname}({{app="web"}} | logfmt | unwrap {q} [2m]) by (app, env)'
        case(U, f"{opname} {conv}", qq,
             matrix_json(range_eval(series, steps_range(0, 120, 60), 120, fn)), start=0, end=120, step="60s")
for qv in (0.0, 0.25, 0.5, 0.9, 0.99, 1.0):
    series = extract(api(), value=lat, labels=lambda l, line: {"level": l["level"]})
    case(U, f"quantile_over_time {qv}", f'quantile_over_time({qv}, {{app="api"}} | logfmt | unwrap duration(latency) [2m]) by (level)',
         matrix_json(range_eval(series, steps_range(60, 120, 60), 120, f_quantile(qv))), start=60, end=120, step="60s")
case(U, "quantile_over_time phi > 1", 'quantile_over_time(2, {app="api", level="error"} | logfmt | unwrap status [2m]) by (level)',
     matrix_json({key({"level": "error"}): [(120, math.inf)]}), start=120, end=120, step="60s")
# unwrapped label removed, all other (extracted) labels kept
series = extract(select(eq(app="web", level="warn")), value=status, labels=minus("status"))
case(U, "unwrap label removed from series", 'max_over_time({app="web", level="warn"} | logfmt | unwrap status [1m])',
     matrix_json(range_eval(series, steps_range(60, 60, 60), 60, f_max)), start=60, end=60, step="60s")
# unwrap stream label (works without parsers)
bt = select(eq(app="batch"))
series = extract(bt, value=lambda l, line: float(l["shard"]), labels=lambda l, line: {k: v for k, v in l.items() if k != "shard"})
for opname, fn in [("sum_over_time", f_sum), ("avg_over_time", f_avg), ("max_over_time", f_max), ("rate", f_sumrate), ("last_over_time", f_last)]:
    case(U, f"{opname} unwrap stream label", f'{opname}({{app="batch"}} | unwrap shard [1m])',
         matrix_json(range_eval(series, steps_range(0, 120, 30), 60, fn)), start=0, end=120, step="30s")
# rate_counter on a constant series -> 0 (no increase)
series = extract(bt, value=lambda l, line: float(l["shard"]), labels=lambda l, line: {k: v for k, v in l.items() if k != "shard"})
case(U, "rate_counter constant value", 'rate_counter({app="batch"} | unwrap shard [1m])',
     matrix_json({k: [(t, 0.0) for t, _ in v] for k, v in range_eval(series, steps_range(60, 120, 60), 60, f_count).items()}), start=60, end=120, step="60s")
# rate_counter with an increasing counter (Loki's extrapolatedRate quirk: ns timestamps vs ms range)
def loki_rate_counter(points_ns, rng_s):
    if len(points_ns) < 2: return 0.0
    rng_ns = rng_s * S
    first, last = points_ns[0], points_ns[-1]
    range_start = first[0] - rng_ns // 10**6
    res = last[1] - first[1]
    lv = 0.0
    for _, v in points_ns:
        if v < lv: res += lv
        lv = v
    dts = (first[0] - range_start) / 1000
    dte = 0.0
    si = (last[0] - first[0]) / 1000
    avg = si / (len(points_ns) - 1)
    if res > 0 and first[1] >= 0:
        dz = si * (first[1] / res)
        if dz < dts: dts = dz
    thr = avg * 1.1
    ext = si + (dts if dts < thr else avg / 2) + (dte if dte < thr else avg / 2)
    return res * (ext / si) / rng_s
ctr_streams = [({"app": "ctr", "i": str(i)}, [(10 * i + 1, f"n={i}")]) for i in range(1, 7)]
ctr_input = [({"app": "ctr", "n": str(v)}, [(t, f"tick")]) for t, v in [(11, 5), (21, 9), (31, 2), (41, 6), (51, 10)]]
pts = [((T0 + t) * S, float(v)) for t, v in [(11, 5), (21, 9), (31, 2), (41, 6), (51, 10)]]
case(U, "rate_counter counter reset, unwrapped stream label merges streams", 'rate_counter({app="ctr"} | unwrap n [1m]) without (n)' if False else 'sum(rate_counter({app="ctr"} | unwrap n [1m]))',
     vector_json({(): [(60, loki_rate_counter(pts, 60))]}, 60), kind="instant", time=60, streams=streams_json(ctr_input))
ctr_one = [({"app": "ctr"}, [(t, f"n={v}") for t, v in [(11, 5), (21, 9), (31, 2), (41, 6), (51, 10)]])]
case(U, "rate_counter counter reset (logfmt)", 'rate_counter({app="ctr"} | logfmt | unwrap n [1m])',
     vector_json({key({"app": "ctr"}): [(60, loki_rate_counter(pts, 60))]}, 60), kind="instant", time=60, streams=streams_json(ctr_one))
# unwrap errors
case(U, "unwrap non-numeric stream label fails", 'sum_over_time({app="batch"} | unwrap host [1m])',
     err("pipeline error: 'SampleExtractionErr' for series: '{__error__=\"SampleExtractionErr\", __error_details__=\"strconv.ParseFloat: parsing \\\"h-1\\\": invalid syntax\", app=\"batch\", env=\"prod\", host=\"h-1\", shard=\"7\"}'.\n"
         "Use a label filter to intentionally skip this error. (e.g | __error__!=\"SampleExtractionErr\").\n"
         "To skip all potential errors you can match empty errors.(e.g __error__=\"\")\n"
         "The label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )\n"),
     start=60, end=60, step="60s")
case(U, "unwrap error filtered after unwrap", 'sum_over_time({app="batch"} | unwrap host | __error__="" [1m])', matrix_json({}), start=60, end=60, step="60s")
case(U, "unwrap error filtered by type after unwrap", 'sum_over_time({app="batch"} | unwrap host | __error__!="SampleExtractionErr" [1m])', matrix_json({}), start=60, end=60, step="60s")
case(U, "numeric post filter passes errored samples", 'sum(sum_over_time({app="batch"} | unwrap host | shard > 100 [1m]))', matrix_json({(): [(60, 0.0)]}), start=60, end=60, step="60s")
case(U, "numeric post filter", 'sum_over_time({app="batch"} | unwrap shard | shard > 5 [1m])', matrix_json({key({"app": "batch", "env": "prod", "host": "h-1"}): [(60, 21.0)]}), start=60, end=60, step="60s")
case(U, "label filter before unwrap", 'sum by (app) (sum_over_time({app="api"} | logfmt | status >= 500 | unwrap latency_ms [1m]))', matrix_json({}), start=60, end=60, step="60s")
case(U, "post filter drops by latency", 'max by (level) (max_over_time({app="api"} | logfmt | unwrap duration(latency) | latency > 300ms [2m]))',
     matrix_json({key({"level": "error"}): [(120, 0.4)]}), start=120, end=120, step="60s")
case(U, "unwrap error pushed down by sum()", 'sum(sum_over_time({app="batch"} | unwrap host [1m]))',
     matrix_json({(): [(60, 0.0)]}), start=60, end=60, step="60s")
case(U, "unwrap error not pushed down by sum by", 'sum by (app) (sum_over_time({app="batch"} | unwrap host [1m]))',
     err("pipeline error: 'SampleExtractionErr' for series: '{__error__=\"SampleExtractionErr\", __error_details__=\"strconv.ParseFloat: parsing \\\"h-1\\\": invalid syntax\", app=\"batch\", env=\"prod\", host=\"h-1\", shard=\"7\"}'.\n"
         "Use a label filter to intentionally skip this error. (e.g | __error__!=\"SampleExtractionErr\").\n"
         "To skip all potential errors you can match empty errors.(e.g __error__=\"\")\n"
         "The label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )\n"),
     start=60, end=60, step="60s")
case(U, "unwrap error max() fails", 'max(max_over_time({app="batch"} | unwrap host [1m]))',
     err("pipeline error: 'SampleExtractionErr' for series: '{__error__=\"SampleExtractionErr\", __error_details__=\"strconv.ParseFloat: parsing \\\"h-1\\\": invalid syntax\", app=\"batch\", env=\"prod\", host=\"h-1\", shard=\"7\"}'.\n"
         "Use a label filter to intentionally skip this error. (e.g | __error__!=\"SampleExtractionErr\").\n"
         "To skip all potential errors you can match empty errors.(e.g __error__=\"\")\n"
         "The label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )\n"),
     start=60, end=60, step="60s")
case(U, "unwrap missing label skips entries", 'sum_over_time({app="batch"} | unwrap nothere [1m])', matrix_json({}), start=60, end=120, step="60s")
case(U, "json parser error fails metric query", 'count_over_time({app="api", level="error"} | json [1m])',
     err("pipeline error: 'JSONParserErr' for series: '{__error__=\"JSONParserErr\", __error_details__=\"Value looks like object, but can't find closing '}' symbol\", app=\"api\", env=\"prod\", level=\"error\"}'.\n"
         "Use a label filter to intentionally skip this error. (e.g | __error__!=\"JSONParserErr\").\n"
         "To skip all potential errors you can match empty errors.(e.g __error__=\"\")\n"
         "The label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )\n"),
     start=60, end=60, step="60s")
JSON_ERR = err("pipeline error: 'JSONParserErr' for series: '{__error__=\"JSONParserErr\", __error_details__=\"Value looks like object, but can't find closing '}' symbol\", app=\"api\", env=\"prod\", level=\"error\"}'.\n"
         "Use a label filter to intentionally skip this error. (e.g | __error__!=\"JSONParserErr\").\n"
         "To skip all potential errors you can match empty errors.(e.g __error__=\"\")\n"
         "The label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )\n")
case(U, "json parser error not pushed down by sum by", 'sum by (level) (count_over_time({app="api", level="error"} | json [1m]))', JSON_ERR, start=60, end=60, step="60s")
case(U, "json parser error not pushed down by sum without", 'sum without (env) (count_over_time({app="api", level="error"} | json [1m]))', JSON_ERR, start=60, end=60, step="60s")
case(U, "json parser error fails max()", 'max(count_over_time({app="api", level="error"} | json [1m]))', JSON_ERR, start=60, end=60, step="60s")
case(U, "json parser error fails topk", 'topk(1, rate({app="api", level="error"} | json [1m]))', JSON_ERR, start=60, end=60, step="60s")
case(U, "json parser error dropped by range grouping by ()", 'max_over_time({app="api", level="error"} | json | unwrap latency [1m]) by ()', matrix_json({}), start=60, end=60, step="60s")
case(U, "drop __error__ keeps errored lines", 'sum by (level) (count_over_time({app="api", level="error"} | json | drop __error__, __error_details__ [1m]))',
     matrix_json({key({"level": "error"}): [(60, 2.0)]}), start=60, end=60, step="60s")
case(U, "json parser error pushed down by sum()", 'sum(count_over_time({app="api", level="error"} | json [1m]))',
     matrix_json({(): [(60, 2.0)]}), start=60, end=60, step="60s")
case(U, "json errors dropped with __error__ filter", 'count_over_time({app="api", level="error"} | json | __error__="" [1m])',
     matrix_json({}), start=60, end=60, step="60s")

# ---- 3. vector aggregations
V = "03_vector_aggregations.json"
base = extract(all_streams())
for rng, step in [(60, 60), (30, 30)]:
    m = range_eval(base, steps_range(0, 120, step), rng, f_count)
    for op in ("sum", "avg", "min", "max", "count", "stddev", "stdvar"):
        for grouping, kw, qg in [("by (app)", {"by": ["app"]}, "by (app)"), ("by (app, env)", {"by": ["app", "env"]}, "by (app, env)"),
                                 ("without (level)", {"without": ["level"]}, "without (level)"), ("no grouping", {"by": []}, ""),
                                 ("by ()", {"by": []}, "by ()")]:
            q = f'{op} {qg} (count_over_time({{env=~".+"}}[{rng}s]))' if qg else f'{op}(count_over_time({{env=~".+"}}[{rng}s]))'
            case(V, f"{op} {grouping} [{rng}s]", q, matrix_json(vagg(m, op, **kw)), start=0, end=120, step=f"{step}s")
m = range_eval(base, steps_range(0, 120, 60), 60, f_count)
case(V, "grouping after the expression", 'sum(count_over_time({env=~".+"}[1m])) by (level)', matrix_json(vagg(m, "sum", by=["level"])), start=0, end=120, step="60s")
case(V, "without after the expression", 'max(count_over_time({env=~".+"}[1m])) without (app, level)', matrix_json(vagg(m, "max", without=["app", "level"])), start=0, end=120, step="60s")
case(V, "by unknown label", 'sum by (nope) (count_over_time({env=~".+"}[1m]))', matrix_json(vagg(m, "sum", by=["nope"])), start=0, end=120, step="60s")
case(V, "nested aggregations", 'max(sum by (app) (count_over_time({env=~".+"}[1m])))', matrix_json(vagg(vagg(m, "sum", by=["app"]), "max", by=[])), start=0, end=120, step="60s")
case(V, "count of count by level", 'count by (level) (count_over_time({env=~".+"}[1m]))', matrix_json(vagg(m, "count", by=["level"])), start=0, end=120, step="60s")
for k in (1, 2, 3, 10):
    case(V, f"topk {k} range", f'topk({k}, count_over_time({{env=~".+"}}[1m]))', matrix_json(topk(m, k)), start=0, end=120, step="60s")
    case(V, f"bottomk {k} range", f'bottomk({k}, count_over_time({{env=~".+"}}[1m]))', matrix_json(topk(m, k, bottom=True)), start=0, end=120, step="60s")
for k in (1, 2):
    case(V, f"topk {k} by env", f'topk({k}, count_over_time({{env=~".+"}}[1m])) by (env)', matrix_json(topk(m, k, by=["env"])), start=0, end=120, step="60s")
    case(V, f"bottomk {k} by (app)", f'bottomk by (app) ({k}, count_over_time({{env=~".+"}}[1m]))', matrix_json(topk(m, k, by=["app"], bottom=True)), start=0, end=120, step="60s")
mi = range_eval(base, [120], 60, f_count)
case(V, "topk instant (sorted by labels)", 'topk(2, count_over_time({env=~".+"}[1m]))', vector_json(topk(mi, 2), 120), kind="instant", time=120)
case(V, "topk ties resolved in label order", 'topk(1, count_over_time({app="web"}[10m]))',
     vector_json(topk(range_eval(extract(select(eq(app="web"))), [120], 600, f_count), 1), 120), kind="instant", time=120)
case(V, "bottomk ties resolved in label order", 'bottomk(1, count_over_time({app="web", level!="warn"}[10m] ) or count_over_time({app="batch"}[10m]))',
     vector_json(topk(range_eval(extract(select(lambda l: (l.get("app") == "web" and l.get("level") != "warn"))), [120], 600, f_count), 1, bottom=True), 120), kind="instant", time=120)
case(V, "sort instant", 'sort(count_over_time({env=~".+"}[2m]))', vector_json(range_eval(base, [120], 120, f_count), 120, sort="asc"), kind="instant", time=120)
case(V, "sort_desc instant", 'sort_desc(count_over_time({env=~".+"}[2m]))', vector_json(range_eval(base, [120], 120, f_count), 120, sort="desc"), kind="instant", time=120)
case(V, "sort_desc of sum by", 'sort_desc(sum by (app) (count_over_time({env=~".+"}[2m])))', vector_json(vagg(range_eval(base, [120], 120, f_count), "sum", by=["app"]), 120, sort="desc"), kind="instant", time=120)
case(V, "sort in range query is by labels", 'sort(count_over_time({env=~".+"}[1m]))', matrix_json(m), start=0, end=120, step="60s")
for op in ("sum", "avg", "max", "min", "count"):
    case(V, f"{op} instant", f'{op} by (env) (count_over_time({{env=~".+"}}[2m]))', vector_json(vagg(range_eval(base, [120], 120, f_count), op, by=["env"]), 120), kind="instant", time=120)
# rates aggregated
mr = range_eval(base, steps_range(0, 120, 30), 60, f_rate)
case(V, "sum by rate", 'sum by (app) (rate({env=~".+"}[1m]))', matrix_json(vagg(mr, "sum", by=["app"])), start=0, end=120, step="30s")
mb = range_eval(extract(all_streams(), value=lambda l, line: float(len(line))), steps_range(0, 120, 30), 60, f_sumrate)
case(V, "sum by bytes_rate", 'sum by (env) (bytes_rate({env=~".+"}[1m]))', matrix_json(vagg(mb, "sum", by=["env"])), start=0, end=120, step="30s")
case(V, "max_query_series exceeded", 'count_over_time({env=~".+"}[1m])', err("maximum of series (2) reached for a single query"), start=0, end=120, step="60s", max_query_series=2)
case(V, "max_query_series after aggregation ok", 'sum by (env) (count_over_time({env=~".+"}[1m]))', matrix_json(vagg(m, "sum", by=["env"])), start=0, end=120, step="60s", max_query_series=2)
case(V, "max_query_series instant exceeded", 'count_over_time({env=~".+"}[2m])', err("maximum of series (3) reached for a single query"), kind="instant", time=120, max_query_series=3)

# ---- 4. binary operations
B = "04_binary_ops.json"
inst = lambda sc, t=100: {"resultType": "scalar", "result": [T0 + t, fmt(sc)]}
for q, v in [("1 + 1", 2), ("2 * 3 + 1", 7), ("2 + 3 * 4", 14), ("(2 + 3) * 4", 20), ("2 ^ 3 ^ 2", 512), ("-1 ^ 2", 1),
             ("10 - 4 - 3", 3), ("12 / 4 / 3", 1), ("7 % 4", 3), ("2 > 1", 1), ("1 > 2", 0), ("2 == 2", 1), ("1 != 1", 0),
             ("3 >= 3", 1), ("3 <= 2", 0), ("1 < 2 + 1", 1), ("0.5 * 4", 2), ("1 / 4", 0.25), ("2 ^ 0.5", math.sqrt(2)),
             ("-2 * -3", 6), ("1 + 2 > 2", 1), ("4 % 2.5", 1.5)]:
    case(B, f"scalar {q}", q, inst(v), kind="instant", time=100)
FOLD = "the parser folds literal division with IEEE semantics (BinOp::apply_scalar gives +Inf); Loki's reduceBinOp/mergeBinOpFloat gives NaN"
case(B, "scalar division by zero is NaN (Loki mergeBinOp)", "1 / 0", inst(math.nan), kind="instant", time=100)
case(B, "scalar modulo by zero is NaN", "5 % 0", inst(math.nan), kind="instant", time=100)
case(B, "scalar range query", "1 + 1", matrix_json({(): [(t, 2.0) for t in steps_range(0, 120, 30)]}), start=0, end=120, step="30s")
case(B, "vector(1)+vector(1) health check", "vector(1)+vector(1)", vector_json({(): [(4, 2.0)]}, 4), kind="instant", time=4)
case(B, "vector(1) instant", "vector(1)", vector_json({(): [(100, 1.0)]}, 100), kind="instant", time=100)
case(B, "vector range", "vector(2.5)", matrix_json({(): [(t, 2.5) for t in steps_range(0, 60, 30)]}), start=0, end=60, step="30s")
case(B, "vector times scalar", "vector(3) * 2", vector_json({(): [(100, 6.0)]}, 100), kind="instant", time=100)
case(B, "vector comparison filter keeps", "vector(3) > 2", vector_json({(): [(100, 3.0)]}, 100), kind="instant", time=100)
case(B, "vector comparison filter drops", "vector(1) > 2", vector_json({}, 100), kind="instant", time=100)
case(B, "vector bool comparison", "vector(1) > bool 2", vector_json({(): [(100, 0.0)]}, 100), kind="instant", time=100)
case(B, "vector division by zero", "vector(1) / vector(0)", vector_json({(): [(100, math.nan)]}, 100), kind="instant", time=100)
m = range_eval(base, steps_range(0, 120, 60), 60, f_count)
arith = [("+", lambda a, b: a + b), ("-", lambda a, b: a - b), ("*", lambda a, b: a * b),
         ("/", lambda a, b: a / b if b else math.nan), ("%", lambda a, b: math.fmod(a, b) if b else math.nan), ("^", lambda a, b: a ** b)]
for op, f in arith:
    case(B, f"vector {op} scalar", f'count_over_time({{env=~".+"}}[1m]) {op} 2', matrix_json(mapv(m, lambda v: f(v, 2.0))), start=0, end=120, step="60s")
    case(B, f"scalar {op} vector", f'2 {op} count_over_time({{env=~".+"}}[1m])', matrix_json(mapv(m, lambda v: f(2.0, v))), start=0, end=120, step="60s")
cmps = [("==", lambda a, b: a == b), ("!=", lambda a, b: a != b), (">", lambda a, b: a > b), (">=", lambda a, b: a >= b), ("<", lambda a, b: a < b), ("<=", lambda a, b: a <= b)]
for op, f in cmps:
    case(B, f"vector {op} scalar filter", f'count_over_time({{env=~".+"}}[1m]) {op} 2', matrix_json(mapv(m, lambda v: v if f(v, 2.0) else None)), start=0, end=120, step="60s")
    case(B, f"vector {op} bool scalar", f'count_over_time({{env=~".+"}}[1m]) {op} bool 2', matrix_json(mapv(m, lambda v: 1.0 if f(v, 2.0) else 0.0)), start=0, end=120, step="60s")
    case(B, f"scalar {op} vector filter keeps vector value", f'2 {op} count_over_time({{env=~".+"}}[1m])', matrix_json(mapv(m, lambda v: v if f(2.0, v) else None)), start=0, end=120, step="60s")
ma = vagg(m, "sum", by=["app"])
me = vagg(range_eval(select_err := extract(select(eq(level="error"))), steps_range(0, 120, 60), 60, f_count), "sum", by=["app"])
for op, f in arith[:4]:
    case(B, f"vector {op} vector same labels", f'sum by (app) (count_over_time({{env=~".+"}}[1m])) {op} sum by (app) (count_over_time({{level="error"}}[1m]))',
         matrix_json(binop(ma, me, f)), start=0, end=120, step="60s")
for op, f in cmps:
    case(B, f"vector {op} vector filter", f'sum by (app) (count_over_time({{env=~".+"}}[1m])) {op} sum by (app) (count_over_time({{app="api"}}[1m]))',
         matrix_json(binop(ma, vagg(range_eval(extract(api()), steps_range(0, 120, 60), 60, f_count), "sum", by=["app"]), lambda a, b: a if f(a, b) else None)), start=0, end=120, step="60s")
    case(B, f"vector {op} bool vector", f'sum by (app) (count_over_time({{env=~".+"}}[1m])) {op} bool sum by (app) (count_over_time({{app="api"}}[1m]))',
         matrix_json(binop(ma, vagg(range_eval(extract(api()), steps_range(0, 120, 60), 60, f_count), "sum", by=["app"]), lambda a, b: 1.0 if f(a, b) else 0.0)), start=0, end=120, step="60s")
# error ratio per app/env with on() and ignoring()
mae = vagg(m, "sum", by=["app", "env"])
merr = vagg(range_eval(extract(select(eq(level="error"))), steps_range(0, 120, 60), 60, f_count), "sum", by=["app", "env"])
case(B, "ratio ignoring(level)", 'sum by (app, env, level) (count_over_time({level="error"}[1m])) / ignoring(level) sum by (app, env) (count_over_time({env=~".+"}[1m]))',
     matrix_json({key({"app": a, "env": e}): v for (k, v) in binop(vagg(range_eval(extract(select(eq(level="error"))), steps_range(0, 120, 60), 60, f_count), "sum", by=["app", "env", "level"]), mae, lambda a, b: a / b, ignoring=["level"]).items() for a, e in [(dict(k)["app"], dict(k)["env"])]}),
     start=0, end=120, step="60s")
case(B, "ratio on(app, env)", 'sum by (app, env, level) (count_over_time({level="error"}[1m])) / on(app, env) sum by (app, env) (count_over_time({env=~".+"}[1m]))',
     matrix_json({key({"app": dict(k)["app"], "env": dict(k)["env"]}): v for k, v in binop(vagg(range_eval(extract(select(eq(level="error"))), steps_range(0, 120, 60), 60, f_count), "sum", by=["app", "env", "level"]), mae, lambda a, b: a / b, on=["app", "env"]).items()}),
     start=0, end=120, step="60s")
mlev = vagg(m, "sum", by=["app", "level"])
case(B, "group_left many-to-one", 'sum by (app, level) (count_over_time({env=~".+"}[1m])) / on(app) group_left sum by (app) (count_over_time({env=~".+"}[1m]))',
     matrix_json(binop(mlev, ma, lambda a, b: a / b, on=["app"], group=True)), start=0, end=120, step="60s")
case(B, "group_right one-to-many", 'sum by (app) (count_over_time({env=~".+"}[1m])) / on(app) group_right sum by (app, level) (count_over_time({env=~".+"}[1m]))',
     matrix_json(binop(mlev, ma, lambda a, b: b / a, on=["app"], group=True)), start=0, end=120, step="60s")
mapp_env = vagg(m, "max", by=["app", "env"])
mlev_env = {}
for k, pts in binop(mlev, vagg(m, "count", by=["app"]), lambda a, b: a * b, on=["app"], group=True).items():
    mlev_env[k] = pts
case(B, "group_left with include label", 'sum by (app, level) (count_over_time({env=~".+"}[1m])) * on(app) group_left(nope) count by (app) (count_over_time({env=~".+"}[1m]))',
     matrix_json(mlev_env), start=0, end=120, step="60s")
inc_rhs_q = 'label_replace(count by (app) (count_over_time({env=~".+"}[1m])), "team", "t-$1", "app", "(.*)")'
inc = {}
for k, pts in binop(mlev, vagg(m, "count", by=["app"]), lambda a, b: a * b, on=["app"], group=True).items():
    d = dict(k); d["team"] = "t-" + d["app"]; inc[key(d)] = pts
case(B, "group_left copies include label from one side", f'sum by (app, level) (count_over_time({{env=~".+"}}[1m])) * on(app) group_left(team) {inc_rhs_q}',
     matrix_json(inc), start=0, end=120, step="60s")
case(B, "many-to-many without group fails", 'sum by (app, level) (count_over_time({env=~".+"}[1m])) / on(app) sum by (app) (count_over_time({env=~".+"}[1m]))',
     err("multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"), start=0, end=120, step="60s")
case(B, "duplicate on right side fails", 'sum by (app) (count_over_time({env=~".+"}[1m])) / on(app) group_left sum by (app, level) (count_over_time({env=~".+"}[1m]))',
     err("found duplicate series on the right hand-side;many-to-many matching not allowed: matching labels must be unique on one side"), start=0, end=120, step="60s")
case(B, "no matching labels gives empty", 'sum by (app) (count_over_time({env=~".+"}[1m])) + sum by (env) (count_over_time({env=~".+"}[1m]))', matrix_json({}), start=0, end=120, step="60s")
case(B, "ignoring everything different matches one-to-one", 'sum by (app) (count_over_time({app="web"}[1m])) + ignoring(app, env) sum by (env) (count_over_time({app="batch"}[1m]))',
     matrix_json(binop(vagg(range_eval(extract(select(eq(app="web"))), steps_range(0, 120, 60), 60, f_count), "sum", by=["app"]),
                       vagg(range_eval(extract(select(eq(app="batch"))), steps_range(0, 120, 60), 60, f_count), "sum", by=["env"]), lambda a, b: a + b, ignoring=["app", "env"])),
     start=0, end=120, step="60s")
case(B, "precedence * over +", 'sum(count_over_time({app="api"}[1m])) + sum(count_over_time({app="web"}[1m])) * 2',
     matrix_json(binop(vagg(range_eval(extract(api()), steps_range(0, 120, 60), 60, f_count), "sum", by=[]), mapv(vagg(range_eval(extract(select(eq(app="web"))), steps_range(0, 120, 60), 60, f_count), "sum", by=[]), lambda v: v * 2), lambda a, b: a + b)),
     start=0, end=120, step="60s")
case(B, "parentheses", '(sum(count_over_time({app="api"}[1m])) + sum(count_over_time({app="web"}[1m]))) * 2',
     matrix_json(mapv(binop(vagg(range_eval(extract(api()), steps_range(0, 120, 60), 60, f_count), "sum", by=[]), vagg(range_eval(extract(select(eq(app="web"))), steps_range(0, 120, 60), 60, f_count), "sum", by=[]), lambda a, b: a + b), lambda v: v * 2)),
     start=0, end=120, step="60s")
case(B, "comparison binds looser than arithmetic", 'sum(count_over_time({app="api"}[1m])) > 5 + 2',
     matrix_json(mapv(vagg(range_eval(extract(api()), steps_range(0, 120, 60), 60, f_count), "sum", by=[]), lambda v: v if v > 7 else None)), start=0, end=120, step="60s")
case(B, "pow right associative on vector", 'vector(2) ^ 3 ^ 2', vector_json({(): [(100, 512.0)]}, 100), kind="instant", time=100)
# set operations
mapi = range_eval(extract(api()), steps_range(0, 120, 60), 60, f_count)
merr2 = range_eval(extract(select(eq(level="error"))), steps_range(0, 120, 60), 60, f_count)
def set_and(l, r):
    out = {}
    for k, pts in l.items():
        rt = {t for t, _ in r.get(k, [])}
        np = [(t, v) for t, v in pts if t in rt]
        if np: out[k] = np
    return out
def set_unless(l, r):
    out = {}
    for k, pts in l.items():
        rt = {t for t, _ in r.get(k, [])}
        np = [(t, v) for t, v in pts if t not in rt]
        if np: out[k] = np
    return out
def set_or(l, r):
    out = {k: list(v) for k, v in l.items()}
    lt = {}
    for k, pts in l.items():
        for t, _ in pts: lt.setdefault(t, set()).add(k)
    for k, pts in r.items():
        for t, v in pts:
            if k not in lt.get(t, set()):
                out.setdefault(k, []).append((t, v))
    for k in out: out[k].sort()
    return out
case(B, "and", 'count_over_time({app="api"}[1m]) and count_over_time({level="error"}[1m])', matrix_json(set_and(mapi, merr2)), start=0, end=120, step="60s")
case(B, "unless", 'count_over_time({app="api"}[1m]) unless count_over_time({level="error"}[1m])', matrix_json(set_unless(mapi, merr2)), start=0, end=120, step="60s")
case(B, "or", 'count_over_time({app="api"}[1m]) or count_over_time({app="web"}[1m])',
     matrix_json(set_or(mapi, range_eval(extract(select(eq(app="web"))), steps_range(0, 120, 60), 60, f_count))), start=0, end=120, step="60s")
case(B, "or prefers left", 'sum by (app) (count_over_time({app="api"}[1m])) or sum by (app) (rate({app="api"}[1m]))',
     matrix_json(vagg(mapi, "sum", by=["app"])), start=0, end=120, step="60s")
case(B, "and on(app)", 'count_over_time({env=~".+"}[1m]) and on(app) count_over_time({level="error"}[1m])',
     matrix_json({k: v for k, v in m.items() if dict(k)["app"] == "api"}), start=0, end=120, step="60s")
case(B, "unless ignoring(level)", 'count_over_time({app="api"}[1m]) unless ignoring(level) count_over_time({level="error"}[1m])', matrix_json({}), start=0, end=120, step="60s")
case(B, "or binds looser than and", 'count_over_time({app="web"}[1m]) or count_over_time({app="api"}[1m]) and count_over_time({level="error"}[1m])',
     matrix_json(set_or(range_eval(extract(select(eq(app="web"))), steps_range(0, 120, 60), 60, f_count), set_and(mapi, merr2))), start=0, end=120, step="60s")
case(B, "set op with literal is a parse error", 'count_over_time({app="api"}[1m]) and 1',
     err("parse error : unexpected literal for right leg of logical/set binary operation (and): 1.000000"), start=0, end=120, step="60s")

# ---- 5. label_replace
L = "05_label_replace.json"
mi = range_eval(base, [120], 120, f_count)
def lr(mat, dst, repl, src, regex):
    out = {}
    for k, pts in mat.items():
        d = dict(k)
        mm = re.fullmatch(regex, d.get(src, ""))
        if mm:
            val = re.sub(r"\$(\d+)", lambda g: mm.group(int(g.group(1))) or "", repl)
            d.pop(dst, None)
            if val: d[dst] = val
        out.setdefault(key(d), []).extend(pts)
    return out
for dst, repl, src, regex in [("team", "t-$1", "app", "(.*)"), ("app", "$1", "app", "(a).*"), ("level", "", "level", "info"),
                              ("svc", "$1-$2", "app", "(w)(e)b"), ("nope", "x", "missing", ""), ("env", "$1", "env", "nomatch(.*)")]:
    q = f'label_replace(count_over_time({{env=~".+"}}[2m]), "{dst}", "{repl}", "{src}", "{regex}")'
    case(L, f"label_replace {dst} {repl} {src} {regex}", q, vector_json(lr(mi, dst, repl, src, regex), 120), kind="instant", time=120)
case(L, "label_replace in range query", 'label_replace(sum by (app) (count_over_time({env=~".+"}[1m])), "x", "$1", "app", "(.).*")',
     matrix_json(lr(vagg(m, "sum", by=["app"]), "x", "$1", "app", "(.).*")), start=0, end=120, step="60s")

# ---- 6. query shapes, steps, instants
Q = "06_steps_and_instants.json"
api_series = extract(api())
for start, end, step in [(7, 113, 10), (0, 120, 15), (1, 59, 60), (31, 31, 30), (59, 61, 1), (0, 90, 45)]:
    q = 'count_over_time({app="api"}[30s])'
    case(Q, f"alignment start={start} end={end} step={step}", q, matrix_json(range_eval(api_series, steps_range(start, end, step), 30, f_count)), start=start, end=end, step=f"{step}s")
# default step: (end-start)/250 floored, min 1s
for span in (250, 500, 1000):
    st = max(1, span // 250)
    case(Q, f"default step span {span}s", 'sum(count_over_time({app="api"}[1m]))',
         matrix_json(vagg(range_eval(api_series, steps_range(0, span, st), 60, f_count), "sum", by=[])), start=0, end=span)
for t in (0, 5, 6, 60, 115, 125, 200):
    case(Q, f"instant count at {t}", 'count_over_time({app="api"}[30s])', vector_json(range_eval(api_series, [t], 30, f_count), t), kind="instant", time=t)
case(Q, "instant with offset", 'count_over_time({app="api"}[30s] offset 30s)', vector_json(range_eval(api_series, [90], 30, f_count, offset=30), 90), kind="instant", time=90)
case(Q, "instant sum by", 'sum by (level) (count_over_time({app="api"}[2m]))', vector_json(vagg(range_eval(api_series, [120], 120, f_count), "sum", by=["level"]), 120), kind="instant", time=120)
case(Q, "instant fractional time", 'count_over_time({app="api"}[30s])', vector_json(range_eval(api_series, [60.5], 30, f_count), 60.5), kind="instant", time=60.5)
case(Q, "window lower bound exclusive", 'count_over_time({app="api", level="info"}[10s])',
     vector_json(range_eval(api_series, [25], 10, f_count), 25), kind="instant", time=25)
case(Q, "window upper bound inclusive", 'count_over_time({app="api", level="info"}[1s])',
     vector_json(range_eval(api_series, [15], 1, f_count), 15), kind="instant", time=15)
case(Q, "empty result", 'count_over_time({app="none"}[1m])', matrix_json({}), start=0, end=120, step="60s")
case(Q, "negative offset", 'count_over_time({app="api"}[30s] offset -30s)', matrix_json(range_eval(api_series, steps_range(0, 60, 30), 30, f_count, offset=-30)), start=0, end=60, step="30s")
case(Q, "range longer than data", 'count_over_time({app="api"}[1h])', matrix_json(range_eval(api_series, steps_range(0, 120, 60), 3600, f_count)), start=0, end=120, step="60s")
case(Q, "max resolution exceeded", 'count_over_time({app="api"}[1m])',
     err("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"), start=0, end=12000, step="1s")

# ---- 7. log queries
G = "07_log_queries.json"
def logq(pred, start, end, limit=100, direction="backward", interval=0, line_filter=lambda x: True, labels=lambda l: l, streams=None):
    entries = []
    for l, es in (streams or STREAMS):
        if not pred(l): continue
        for t, line in es:
            if start <= t < end and line_filter(line):
                entries.append((t, key(labels(l)), line))
    entries.sort(key=lambda e: (e[0], e[1]))
    dedup = []
    for e in entries:
        if dedup and dedup[-1] == e: continue
        dedup.append(e)
    if direction == "backward": dedup.reverse()
    out = {}
    last = None; n = 0
    for t, lk, line in dedup:
        if n >= limit: break
        if interval and last is not None:
            if direction == "forward" and t < last + interval: continue
            if direction == "backward" and t > last - interval: continue
        last = t; n += 1
        out.setdefault(lk, []).append((t, line))
    return streams_result([(dict(k), out[k]) for k in sorted(out)])
for limit in (1, 3, 5, 100):
    for direction in ("backward", "forward"):
        case(G, f"limit {limit} {direction}", '{app="api"}', logq(eq(app="api"), 0, 120, limit, direction), start=0, end=120, limit=limit, direction=direction)
        case(G, f"all streams limit {limit} {direction}", '{env=~".+"}', logq(lambda l: "env" in l, 0, 120, limit, direction), start=0, end=120, limit=limit, direction=direction)
for s, e in [(5, 15), (5, 16), (0, 5), (119, 200), (50, 52)]:
    case(G, f"range [{s},{e}) inclusive start exclusive end", '{env=~".+"}', logq(lambda l: "env" in l, s, e, 100, "forward"), start=s, end=e, direction="forward")
for interval, direction in [(20, "forward"), (20, "backward"), (30, "forward"), (1, "backward"), (25, "forward")]:
    case(G, f"interval {interval}s {direction}", '{env=~".+"}', logq(lambda l: "env" in l, 0, 120, 100, direction, interval), start=0, end=120, direction=direction, interval=f"{interval}s")
case(G, "interval with limit", '{app="api"}', logq(eq(app="api"), 0, 120, 3, "backward", 30), start=0, end=120, limit=3, interval="30s")
for flt, pyf in [('|= "POST"', lambda x: "POST" in x), ('!= "GET"', lambda x: "GET" not in x), ('|~ "status=5.."', lambda x: re.search("status=5..", x)),
                 ('!~ "/a/[0-9]"', lambda x: not re.search("/a/[0-9]", x)), ('|= "status=200" != "/slow"', lambda x: "status=200" in x and "/slow" not in x)]:
    case(G, f"line filter {flt}", f'{{env=~".+"}} {flt}', logq(lambda l: "env" in l, 0, 120, 100, "forward", line_filter=pyf), start=0, end=120, direction="forward")
case(G, "label filter on stream label", '{app="api"} | level="error"', logq(eq(app="api", level="error"), 0, 120, 100, "forward"), start=0, end=120, direction="forward")
case(G, "drop merges result streams", '{app="api"} | drop level', logq(eq(app="api"), 0, 120, 100, "forward", labels=lambda l: {k: v for k, v in l.items() if k != "level"}), start=0, end=120, direction="forward")
case(G, "keep merges result streams", '{env="prod"} | keep app', logq(eq(env="prod"), 0, 120, 8, "backward", labels=lambda l: {"app": l["app"]}), start=0, end=120, limit=8)
case(G, "selector regex", '{app=~"w.*", level!="warn"}', logq(lambda l: l.get("app", "").startswith("w") and l.get("level") != "warn", 0, 120), start=0, end=120)
case(G, "no match", '{app="none"}', streams_result([]), start=0, end=120)
case(G, "instant log query reads 30s before time", '{app="api"}', logq(eq(app="api"), 30, 60), kind="instant", time=60)
dup = [({"app": "d", "x": "1"}, [(1, "same"), (2, "same")]), ({"app": "d", "x": "2"}, [(1, "same"), (3, "other")])]
case(G, "identical entries of merged streams are de-duplicated", '{app="d"} | drop x',
     logq(eq(app="d"), 0, 10, 100, "forward", labels=lambda l: {"app": "d"}, streams=dup), start=0, end=10, direction="forward", streams=streams_json(dup))
case(G, "limit above max_entries_limit_per_query", '{app="api"}', err("max entries limit per query exceeded, limit > max_entries_limit (6000 > 5000)"), start=0, end=120, limit=6000)
# parser-based log queries (pipeline)
pl = lambda l, line: {**l, **{k: v for k, v in parse_logfmt(line).items() if k not in l}, **{k + "_extracted": v for k, v in parse_logfmt(line).items() if k in l}}
case(G, "logfmt labels", '{app="web", env="dev"} | logfmt', logq(eq(app="web", env="dev"), 0, 120, 100, "forward"), start=0, end=120, direction="forward")
FILES[G][-1]["expected"] = streams_result(sorted([(pl(l, line), [(t, line)]) for l, es in select(eq(app="web", env="dev")) for t, line in es], key=lambda x: key(x[0])))
case(G, "logfmt numeric label filter", '{app="api"} | logfmt | status >= 500', logq(eq(app="api", level="error"), 0, 120, 100, "forward"), start=0, end=120, direction="forward")
FILES[G][-1]["expected"] = streams_result(sorted([(pl(l, line), [(t, line)]) for l, es in select(eq(app="api")) for t, line in es if int(parse_logfmt(line)["status"]) >= 500], key=lambda x: key(x[0])))
case(G, "logfmt duration filter + line_format", '{app="web"} | logfmt | latency > 900ms | line_format "{{.path}} took {{.latency}}"', streams_result([]), start=0, end=120, direction="forward")
FILES[G][-1]["expected"] = streams_result([({**l, **{k: v for k, v in parse_logfmt(line).items() if k not in l}, "level_extracted": "warn"}, [(t, f"/slow took {parse_logfmt(line)['latency']}")]) for l, es in select(eq(app="web", level="warn")) for t, line in es if go_duration_s(parse_logfmt(line)["latency"]) > 0.9])
case(G, "pattern parser", '{app="api", level="error"} | pattern "level=<_> method=<method> path=<_> status=<status> <_>" | status="500"', streams_result([]), start=0, end=120, direction="forward")
FILES[G][-1]["expected"] = streams_result([({**l, "method": parse_logfmt(line)["method"], "status": "500"}, [(t, line)]) for l, es in select(eq(app="api", level="error")) for t, line in es if parse_logfmt(line)["status"] == "500"][:0] or
                                          [({"app": "api", "env": "prod", "level": "error", "method": "GET", "status": "500"}, [(67, lf("error", "GET", "/b", 500, 350, 40))]),
                                           ({"app": "api", "env": "prod", "level": "error", "method": "POST", "status": "500"}, [(7, lf("error", "POST", "/b", 500, 250, 20))])])

# ---- 8. design-notes (seed) queries
D = "08_design_notes_queries.json"
svc = [
    ({"service": "ryot", "level": "error"}, [(10, '{"message":"db timeout","user":"u1"}'), (1900, '{"message":"db timeout","user":"u2"}')]),
    ({"service": "ryot", "level": "info"}, [(20, '{"message":"ok"}'), (30, '{"message":"ok"}'), (3000, '{"message":"ok"}')]),
    ({"service": "sigmavault", "level": "error", "operation": "auth", "status": "denied"}, [(40, '{"user":"eve","timestamp":"t1"}')]),
    ({"service": "sigmavault", "level": "info", "operation": "auth", "status": "success"}, [(50, '{"user":"bob","timestamp":"t2"}')]),
    ({"service": "agents", "type": "memory_op", "agent": "a1", "level": "info"}, [(60, '{"duration_ms":6000,"memory_ops":3}'), (70, '{"duration_ms":10,"memory_ops":4}')]),
    ({"service": "agents", "type": "memory_op", "agent": "a2", "level": "info"}, [(80, '{"duration_ms":7000,"memory_ops":5}')]),
    ({"service": "agents", "type": "task", "agent": "a1", "level": "info"}, [(90, '{"agent":"a1","task_id":"t9","duration_ms":8000}'), (95, '{"agent":"a1","task_id":"t10","duration_ms":100}')]),
]
sj = streams_json(svc)
def svc_count(pred, t, rng, by):
    return vagg(range_eval(extract(select(pred, svc)), [t], rng, f_count), "sum", by=by)
case(D, "errors by service (instant 1h)", 'sum by (service) (count_over_time({level="error"} [1h]))',
     vector_json(svc_count(eq(level="error"), 3600, 3600, ["service"]), 3600), kind="instant", time=3600, streams=sj)
case(D, "errors by service (range)", 'sum by (service) (count_over_time({level="error"} [1h]))',
     matrix_json(vagg(range_eval(extract(select(eq(level="error"), svc)), steps_range(0, 3600, 1800), 3600, f_count), "sum", by=["service"])), start=0, end=3600, step="30m", streams=sj)
case(D, "ryot error rate", 'rate({service="ryot", level="error"} [5m])',
     vector_json(range_eval(extract(select(eq(service="ryot", level="error"), svc)), [300], 300, f_rate), 300), kind="instant", time=300, streams=sj)
case(D, "log volume by level (sigmavault)", 'sum by (level) (count_over_time({service="sigmavault"} [1h]))',
     vector_json(svc_count(eq(service="sigmavault"), 3600, 3600, ["level"]), 3600), kind="instant", time=3600, streams=sj)
case(D, "memory operations by agent", 'sum by (agent) (count_over_time({service="agents", type="memory_op"} [1h]))',
     vector_json(svc_count(eq(service="agents", type="memory_op"), 3600, 3600, ["agent"]), 3600), kind="instant", time=3600, streams=sj)
case(D, "count total series", 'count(count_over_time({service="ryot"}[1h]))',
     vector_json(vagg(range_eval(extract(select(eq(service="ryot"), svc)), [3600], 3600, f_count), "count", by=[]), 3600), kind="instant", time=3600, streams=sj)
case(D, "cardinality by level (1d)", 'count(count_over_time({service="ryot"} [1d])) by level', err("parse error at line 1, col 50: syntax error: unexpected IDENTIFIER, expecting ("), kind="instant", time=86400, streams=sj)
case(D, "cardinality by (level) (1d)", 'count(count_over_time({service="ryot"} [1d])) by (level)',
     vector_json(vagg(range_eval(extract(select(eq(service="ryot"), svc)), [86400], 86400, f_count), "count", by=["level"]), 86400), kind="instant", time=86400, streams=sj)
case(D, "high cardinality warning", 'count(count_over_time({service="ryot"} [1h])) by (request_id) > 1000', vector_json({}, 3600), kind="instant", time=3600, streams=sj)
case(D, "logs per minute > 0", 'sum by (service) (count_over_time({service="ryot"} [1m])) > 0',
     matrix_json(vagg(range_eval(extract(select(eq(service="ryot"), svc)), steps_range(0, 120, 60), 60, f_count), "sum", by=["service"])), start=0, end=120, step="1m", streams=sj)
case(D, "count_over_time per 1m step", 'count_over_time({service="ryot"} [1h])',
     matrix_json(range_eval(extract(select(eq(service="ryot"), svc)), steps_range(0, 3600, 600), 3600, f_count)), start=0, end=3600, step="10m", streams=sj)
case(D, "selector", '{service="ryot"}', logq(eq(service="ryot"), 0, 3600, streams=svc), start=0, end=3600, streams=sj)
case(D, "selector two labels", '{service="ryot", level="error"}', logq(eq(service="ryot", level="error"), 0, 3600, streams=svc), start=0, end=3600, streams=sj)
case(D, "selector not equal", '{service!="ryot", level="info"}', logq(lambda l: l["service"] != "ryot" and l.get("level") == "info", 0, 3600, streams=svc), start=0, end=3600, streams=sj)
case(D, "selector regex", '{service=~"ryot|sigmalang"}', logq(lambda l: l["service"] in ("ryot", "sigmalang"), 0, 3600, streams=svc), start=0, end=3600, streams=sj)
case(D, "selector regex not", '{service!~"debug.*", level="error"}', logq(eq(level="error"), 0, 3600, streams=svc), start=0, end=3600, streams=sj)
case(D, "contains error", '{service="ryot"} |= "timeout"', logq(eq(service="ryot"), 0, 3600, line_filter=lambda x: "timeout" in x, streams=svc), start=0, end=3600, streams=sj)
case(D, "does not contain", '{service="ryot"} != "timeout"', logq(eq(service="ryot"), 0, 3600, line_filter=lambda x: "timeout" not in x, streams=svc), start=0, end=3600, streams=sj)
case(D, "regex line filter", '{service="ryot"} |~ "db.*out"', logq(eq(service="ryot"), 0, 3600, line_filter=lambda x: re.search("db.*out", x), streams=svc), start=0, end=3600, streams=sj)
case(D, "missing labels (trace_id empty)", '{service="ryot", trace_id=""}', logq(eq(service="ryot"), 0, 3600, streams=svc), start=0, end=3600, streams=sj)
case(D, "failed auth with json + line_format", '{service="sigmavault", operation="auth", status!="success"} | json | line_format "{{.user}} failed at {{.timestamp}}"',
     streams_result([({"service": "sigmavault", "level": "error", "operation": "auth", "status": "denied", "user": "eve", "timestamp": "t1"}, [(40, "eve failed at t1")])]), start=0, end=3600, streams=sj)
case(D, "long running tasks", '{service="agents", type="task"} | json | duration_ms > 5000 | line_format "{{.agent}}: {{.task_id}} took {{.duration_ms}}ms"',
     streams_result([({"service": "agents", "type": "task", "agent": "a1", "level": "info", "agent_extracted": "a1", "task_id": "t9", "duration_ms": "8000"}, [(90, "a1: t9 took 8000ms")])]), start=0, end=3600, streams=sj)
case(D, "sum of unwrapped memory ops", 'sum(sum_over_time({service="agents", type="memory_op"} | json | unwrap memory_ops [1h]))',
     vector_json({(): [(3600, 12.0)]}, 3600), kind="instant", time=3600, streams=sj)
case(D, "avg duration", 'avg(avg_over_time({service="agents", type="memory_op"} | json | unwrap duration_ms [1h]))',
     vector_json({(): [(3600, (6000 + 10 + 7000) / 3)]}, 3600), kind="instant", time=3600, streams=sj)

for fname, cases in FILES.items():
    doc = {"description": f"LogQL conformance cases ({fname}); generated by generate.py from Loki's documented semantics",
           "streams": streams_json(STREAMS), "cases": cases}
    with open(os.path.join(HERE, fname), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
print({k: len(v) for k, v in FILES.items()}, sum(len(v) for v in FILES.values()))
