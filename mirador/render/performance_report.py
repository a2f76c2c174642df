"""`performance_report.md`: what was measured, on which side of the wire, and the verdict."""

from __future__ import annotations

from typing import Any

from mirador.render.markdown import (
    bullets,
    cell,
    code,
    mermaid_bar,
    shorten,
    table,
    text,
)


def number(value: Any, digits: int = 0, unit: str = "") -> str:
    """A figure for a person: thousands separated, `—` when unknown (never 0)."""
    if value is None:
        return "—"
    return f"{value:,.{digits}f}{unit}"


def _pct(value: Any) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def render(doc: dict[str, Any]) -> str:
    ov, v = doc["overall"], doc["verdict"]
    th = v["thresholds"]
    out = ["# Mirador performance report\n\n"]
    head = "PASS" if v["passed"] else "FAIL"
    partial = " (partial: the run was interrupted)" if doc.get("partial") else ""
    out.append(f"**{head}{partial}** — success rate {_pct(ov['success_rate'])} "
               f"(needs ≥ {_pct(th['success_rate'])}), average response "
               f"{number(ov['avg_response_s'], 2, ' s')} (needs < {th['avg_response_s']:g} s), "
               f"quality {number(ov['quality_mean'], 2)} (needs > {th['quality']:g}).\n\n")
    s = doc["settings"]
    out.append(f"Server {code(doc['host'])} (Ollama {text(doc.get('server_version'))}), "
               f"{text(doc['generated_at'])}. {s['requests']} measured request(s) per model "
               f"after {s['warmup']} warm-up, concurrency {s['concurrency']}"
               f"{', cold starts forced' if s['cold'] else ''}"
               f"{', judged by ' + code(s['judge_model']) if s['judge_model'] else ''}.\n\n")
    out.append("*Client side* figures are our own clock (request sent → last chunk; time to "
               "the first non-empty token). *Server side* figures are Ollama's counters from "
               "the final chunk. Warm figures exclude warm-up requests and the cold first "
               "request, whose model load is reported as *load*.\n\n")

    chat = [m for m in doc["models"] if m["kind"] != "embedding" and not m["error"]]
    emb = [m for m in doc["models"] if m["kind"] == "embedding" and not m["error"]]
    if chat:
        out.append("## Chat and completion models\n\n")
        rows = [[code(m["name"]),
                 f"{m['successes']}/{m['requests']} ({_pct(m['success_rate'])})",
                 number(m["latency_ms"]["mean"]), number(m["latency_ms"]["p50"]),
                 number(m["latency_ms"]["p95"]), number(m["latency_ms"]["max"]),
                 number(m["ttft_ms"]["p50"]), number(m["decode_tokens_per_s"]["mean"], 1),
                 number(m["prefill_tokens_per_s"]["mean"]), number(m["load_ms"]),
                 f"{number(m['quality']['mean'], 2)} / {number(m['quality']['min'], 2)}",
                 cell(m["processor"] or "—")] for m in chat]
        out.append(table(["Model", "Success", "Latency mean (client, ms)", "p50", "p95", "max",
                          "TTFT p50 (client, ms)", "Decode tok/s (server)",
                          "Prefill tok/s (server)", "Load (server, ms)", "Quality mean / min",
                          "Processor"], rows, raw=True))
        out.append("\n")
        labels = [m["name"].removesuffix(":latest") for m in chat]
        out.append(mermaid_bar("Warm latency, mean (client, ms)", labels,
                               [m["latency_ms"]["mean"] or 0 for m in chat], "ms"))
        out.append("\n")
        out.append(mermaid_bar("Decode rate, mean (server, tokens/s)", labels,
                               [m["decode_tokens_per_s"]["mean"] or 0 for m in chat],
                               "tokens/s"))
        out.append("\n")
    if emb:
        out.append("## Embedding models\n\nMeasured through `/api/embed` only (they cannot "
                   "generate). Quality: dimension, unit norm, paraphrase closer than an "
                   "unrelated sentence.\n\n")
        rows = [[code(m["name"]), f"{m['successes']}/{m['requests']}",
                 number(m["latency_ms"]["mean"]), number(m["latency_ms"]["p95"]),
                 number(m["load_ms"]), number(m["quality"]["mean"], 2)] for m in emb]
        out.append(table(["Model", "Success", "Latency mean (client, ms)", "p95",
                          "Load (server, ms)", "Quality"], rows, raw=True))
        out.append("\n")

    failed = [m for m in doc["models"] if m["error"]]
    errors = [(m["name"], k, n) for m in doc["models"] for k, n in m["errors"].items()]
    if failed or errors:
        out.append("## Errors\n\n")
        out.append(bullets(f"{code(m['name'])}: not measured — {text(m['error'])}"
                           for m in failed))
        if errors:
            out.append("\n" + table(["Model", "Error kind", "Count"],
                                    [[code(n), code(k), c] for n, k, c in errors], raw=True))
        out.append("\n")

    warnings = []
    for m in doc["models"]:
        if m["processor"] and m["processor"] != "100% GPU":
            warnings.append(f"{code(m['name'])} runs {text(m['processor'])}: part of it is in "
                            "system RAM, which is much slower. Lower `num_ctx`, use a smaller "
                            "quantization, or free GPU memory.")
        if m["truncated"]:
            warnings.append(f"{code(m['name'])}: {m['truncated']} answer(s) cut off by "
                            "`num_predict` (done_reason `length`).")
        if m.get("thinking", {}).get("requests"):
            warnings.append(f"{code(m['name'])} thinks before answering "
                            f"({m['thinking']['requests']} request(s), about "
                            f"{m['thinking']['mean_chars']} characters of thinking each); "
                            "thinking tokens count in the decode rate and TTFT.")
    if warnings:
        out.append("## Warnings\n\n" + bullets(warnings) + "\n")

    samples = [x for x in doc["samples"] if not x["warmup"] and x["ok"]]
    slow = sorted((x for x in samples if x["latency_ms"] is not None),
                  key=lambda x: -x["latency_ms"])[:3]
    if slow:
        out.append("## Slowest answers\n\n")
        out.append(table(["Model", "Latency (client, ms)", "Tokens", "Prompt", "Answer"],
                         [[code(x["model"]), number(x["latency_ms"]), number(x["eval_count"]),
                           cell(shorten(x["prompt"], 80)), cell(shorten(x["answer"], 120))]
                          for x in slow], raw=True))
        out.append("\n")
    scored = sorted((x for x in doc["samples"] if not x["warmup"] and x["quality"] is not None),
                    key=lambda x: x["quality"])[:3]
    if scored:
        out.append("## Lowest-scored answers\n\n")
        rows = []
        for x in scored:
            detail = x.get("quality_detail") or {}
            failed_checks = "; ".join(f"{c['check']}: {c['detail']}"
                                      for c in detail.get("checks", []) if c["score"] < 1)
            if detail.get("judge") is not None:
                failed_checks += f"; judge {detail['judge']:.2f}: {detail['judge_reason']}"
            rows.append([code(x["model"]), number(x["quality"], 2), cell(shorten(x["prompt"], 70)),
                         cell(shorten(x["answer"], 120)), cell(failed_checks or "all passed")])
        out.append(table(["Model", "Quality", "Prompt", "Answer", "Why"], rows, raw=True))
        out.append("\n")

    swept = [m for m in doc["models"] if m.get("sweep")]
    if swept:
        from mirador.performance import knee

        out.append("## Concurrency sweep\n\n")
        for m in swept:
            k = knee(m["sweep"])
            note = (f"throughput stops growing after {k} in flight — about what the server "
                    "runs in parallel (OLLAMA_NUM_PARALLEL)" if k else "no knee in this range")
            out.append(f"{code(m['name'])}: {text(note)}.\n\n")
            out.append(table(["In flight", "Throughput (req/s)", "Tokens/s (server)",
                              "Latency p50 (ms)", "p95", "TTFT p50 (ms)", "503s"],
                             [[x["concurrency"], number(x["throughput_rps"], 2),
                               number(x["tokens_per_s"], 1), number(x["latency_ms"]["p50"]),
                               number(x["latency_ms"]["p95"]), number(x["ttft_ms"]["p50"]),
                               x["http_503"]] for x in m["sweep"]]))
            out.append("\n")

    base = doc.get("baseline")
    if base:
        out.append(f"## Compared with {code(base['file'])}\n\n")
        rows = []
        for b in base["models"]:
            if not b.get("in_baseline"):
                rows.append([code(b["name"]), "—", "—", "—", "not in the baseline"])
                continue
            lat = b["latency_mean_ms"]
            q = b["quality_mean"]
            rows.append([code(b["name"]), f"{number(lat[0])} → {number(lat[1])}",
                         "—" if b["latency_delta_pct"] is None
                         else f"{b['latency_delta_pct']:+.1f}%",
                         f"{number(q[0], 2)} → {number(q[1], 2)}",
                         "⚠️ " + cell("; ".join(b["reasons"])) if b["regression"] else "ok"])
        out.append(table(["Model", "Latency mean (ms)", "Change", "Quality mean", "Regression"],
                         rows, raw=True))
        out.append("\n")
    return "".join(out)
