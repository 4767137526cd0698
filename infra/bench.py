"""`make bench`: measure DESIGN.md's budgets in one run, print them, write .local-stack/bench.json.

Machines here are shared and noisy, so timings are medians and ratios of runs interleaved side
by side, never seconds compared to a fixed number. Exits 1 if any budget is exceeded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from infra import bench_calls, bench_cost, bench_imports, bench_latency, bench_prices, bench_processor_calls, bench_sweep
from infra.bench_aws import json_default

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / ".local-stack" / "bench.json"
SWEEP_SCALES = ((1_000, 100), (10_000, 100), (10_000, 10))


class Report:
    """Prints sections and budget lines, and remembers which budgets failed."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def section(self, title: str) -> None:
        print(f"\n== {title} ==")

    def budget(self, text: str, ok: bool) -> None:
        print(f"budget: {text} → {'OK' if ok else 'OVER'}")
        if not ok:
            self.failed.append(text)


def table(rows: list[tuple[Any, ...]], indent: str = "  ") -> None:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [str(c).rjust(w) if _numeric(c) else str(c).ljust(w) for c, w in zip(row, widths)]
        print(indent + "  ".join(cells).rstrip())


def _numeric(cell: Any) -> bool:
    text = str(cell).replace(",", "").replace("$", "").replace("×", "").replace(" k", "").replace(" M", "")
    try:
        float(text)
        return True
    except ValueError:
        return False


# --- 1 ------------------------------------------------------------------------------------------


def report_imports(report: Report, runs: int) -> tuple[bench_imports.ImportFigures, bench_imports.FirstEventFigures]:
    report.section("1. Webhook intake cold start vs a bare `import boto3`")
    first = bench_imports.measure_first_event(runs=runs)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"  THE BUDGETED FIGURE: intake first event / bare `import boto3` = {first.ratio:.2f}× "
          f"(budget {first.budget_ratio}×; load average {load:.2f} when it ended)")
    print("    first event = in a fresh interpreter, `import handler` (functions/stripe_webhook, shared/ as the layer)")
    print("      then one really-signed Stripe webhook through lambda_handler: bootstrap, the botocore session and")
    print("      clients, the signing secret read from SSM, the ledger PutItem and the processor's asynchronous Lambda")
    print("      Invoke, over HTTP to a local moto server; interpreter start-up excluded, byte-code cached as the layer ships it")
    print("    bare = in a fresh interpreter, `import boto3` alone, timed the same way")
    print(f"    medians of {first.runs_each} runs of each, interleaved in this run: "
          f"{first.first_event_median_s * 1000:.1f} ms vs {first.boto3_median_s * 1000:.1f} ms "
          f"(outcomes: {', '.join(sorted(set(first.statuses)))})")
    print(f"  where the first event's time goes (medians of {first.runs_each} more runs, split at each step;")
    print("  the AWS SDK is imported lazily, by the first event):")
    table([(name, f"{seconds * 1000:.1f} ms") for name, seconds in first.phases_median_s.items()], indent="    ")
    print(f"    {first.modules_loaded} modules loaded; {len(first.data_files)} JSON data files opened, "
          f"{first.data_bytes_read / 1024:.0f} KiB on disk (botocore's data and the trimmed models and endpoints)")
    report.budget(f"intake first event within {first.budget_ratio}× a bare boto3 import ({first.ratio:.2f}×)", first.ok)
    figures = bench_imports.measure_imports(runs=runs)
    print(f"  the handler's import alone ({runs} fresh interpreters of each kind, interleaved; time of the import "
          "statement):")
    for label, median, samples in (
        ("intake handler (functions/stripe_webhook as `handler`, shared/ on sys.path)", figures.intake_median_s,
         figures.intake_runs_s),
        ("bare `import boto3`", figures.boto3_median_s, figures.boto3_runs_s),
    ):
        spread = f"min {min(samples) * 1000:.1f}, max {max(samples) * 1000:.1f}"
        print(f"    {label}: median {median * 1000:.1f} ms ({spread})")
    print(f"    ratio intake import / boto3 import: {figures.ratio:.2f}× (the handler module alone, not the budgeted figure)")
    for module, loaded in figures.forbidden_loaded.items():
        print(f"  {module:<18} {'LOADED by the intake' if loaded else 'not loaded'}")
    print("  slowest modules the intake imports (self time, one -X importtime run):")
    table([(name, f"{ms:.1f} ms") for name, ms in figures.slowest_self], indent="    ")
    print("  the handler's own imports (cumulative):")
    table([(name, f"{ms:.1f} ms") for name, ms in figures.largest_direct], indent="    ")
    report.budget(f"intake import within {figures.budget_ratio}× a bare boto3 import ({figures.ratio:.2f}×)",
                  figures.ratio <= figures.budget_ratio)
    report.budget("no " + " / ".join(figures.forbidden_loaded) + " in sys.modules after importing the intake",
                  not any(figures.forbidden_loaded.values()))
    return figures, first


# --- 2 ------------------------------------------------------------------------------------------


def report_calls(report: Report) -> bench_calls.IntakeCallFigures:
    report.section("2. AWS calls per webhook event (real intake handler, really-signed events, moto)")
    figures = bench_calls.measure_intake_calls()
    print(f"  cold start, once per container: {figures.cold_start_secret_calls} secret fetch "
          "(ssm.GetParameter, not per event), "
          f"then the event's own {figures.cold_start_event_calls} calls")
    rows = [("case", "outcome", "HTTP", "calls", "allowed", "operations")]
    rows += [(c.case, c.outcome, c.status, c.calls, c.allowed, ", ".join(c.operations) or "-") for c in figures.cases]
    table(rows)
    wrong = bench_calls.outcomes_as_expected(figures)
    if wrong:
        print(f"  cases that did not exercise what they should: {', '.join(wrong)}")
    report.budget(f"at most {bench_calls.BUDGET_CALLS_PER_EVENT} AWS calls per event, none for a rejected or "
                  "other-mode event", figures.ok and not wrong)
    return figures


# --- processor calls ------------------------------------------------------------------------------


def report_processor_calls(report: Report) -> list[bench_processor_calls.EventTypeCalls]:
    report.section("DynamoDB calls and capacity units per billing event (real processor, moto)")
    rows = bench_processor_calls.measure_processor_calls()
    table([("event", "calls", "catalog", "RRU", "WRU", "operations")]
          + [(r.label, r.calls, r.catalog_calls, f"{r.read_units:.1f}", f"{r.write_units:.1f}", ", ".join(r.operations))
             for r in rows])
    print("  calls = the event's own; catalog = the container's one read of plans and communities (two Queries on")
    print("  the by-kind index, then none for any event it serves); RRU/WRU include them. TransactWriteItems (a new")
    print("  customer's link and member in one call) bills twice the units of its items.")
    report.budget(f"at most {bench_processor_calls.BUDGET_DYNAMODB_CALLS_PER_EVENT} DynamoDB calls per billing "
                  f"event, a cold container's first one included (most: {max(r.calls for r in rows)})",
                  all(r.ok for r in rows))
    return rows


# --- latency ------------------------------------------------------------------------------------


def report_latency(report: Report) -> list[bench_latency.LatencyFigures] | None:
    report.section("Payment → Discord role on the local stack (from outside, nothing drained by hand)")
    print("  from the card payment submitted on the Stripe sandbox's page to the moment the Discord stand-in")
    print("  gives the member the role (its own wall-clock record): sandbox webhooks → intake → asynchronous")
    print("  invoke → processor → access queue → dispatcher → Discord, every consumer running concurrently up to")
    print("  its function's concurrency in template.yaml, moto in a process of its own (as AWS is not in the")
    print(f"  functions' process); machine load average when it started: {_load()}")
    try:
        results = bench_latency.measure_latency()
    except RuntimeError as error:
        print(f"  could not measure: {error}")
        report.budget(f"payment → role p99 under {bench_latency.BUDGET_P99_S:.0f} s", False)
        return None
    for f in results:
        print(f"  {f.label}: p50 {f.p50:.2f} s, p99 {f.p99:.2f} s over {len(f.samples_s)} payments")
        report.budget(f"{f.label}: p99 under {bench_latency.BUDGET_P99_S:.0f} s ({f.p99:.2f} s)", f.ok)
    return results


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f} (1, 5, 15 min) on {os.cpu_count()} CPUs"


# --- 3 ------------------------------------------------------------------------------------------


def report_sweep(report: Report) -> list[bench_sweep.SweepFigures]:
    report.section("3. DynamoDB items read by one lifecycle sweep (run_lifecycle, moto)")
    results = []
    for members, due in SWEEP_SCALES:
        results.append(bench_sweep.measure_sweep(members, due))
    rows = [("members", "due", "swept", "items read", "read calls", "items read / due member", "Scan calls",
             "populate s", "sweep s")]
    for f in results:
        rows.append((f"{f.members:,}", f.due, f.swept, f.items_read, f.read_calls, f"{f.items_per_due_member:.1f}",
                     f.scans, f"{f.populate_s:.1f}", f"{f.sweep_s:.1f}"))
    table(rows)
    print("  operations per sweep: " + "; ".join(
        f"{f.members:,}/{f.due}: " + ", ".join(f"{op} {n}" for op, n in sorted(f.operations.items())) for f in results))
    small, large = results[0], results[1]
    report.budget(f"items read follow the due members, not all members ({small.members:,} vs {large.members:,} "
                  f"members, {small.due} due: {small.items_read} vs {large.items_read} items)",
                  bench_sweep.scales_with_due(small, large))
    report.budget("no Scan issued by the sweep", all(f.scans == 0 for f in results))
    report.budget("every due member was swept", all(f.swept == f.due for f in results))
    return results


# --- 4 ------------------------------------------------------------------------------------------


def report_cost(report: Report, intake_init_s: float | None) -> tuple[bench_prices.CostModel, bench_cost.MonthFigures]:
    report.section(f"4. AWS cost model for {bench_prices.MEMBERS:,} paying members a month")
    month = bench_cost.measure_member_month()
    init_s = {name: bench_imports.init_seconds(name) for name in bench_cost.FUNCTIONS if name != "stripe_webhook"}
    init_s["stripe_webhook"] = (intake_init_s if intake_init_s is not None
                                else bench_imports.init_seconds("stripe_webhook"))
    model = bench_prices.build_cost_model(month, init_s)
    print("  measured per member-month through the real handlers (intake → processor → access queue →")
    print("  dispatcher, sweeps), counted from botocore hooks; ms = billed handler ms:")
    table(bench_prices.member_month_table(model), indent="    ")
    print("  cold start per function (init = import time in a fresh interpreter; first call = building clients):")
    table([("function", "memory MB", "init ms", "first-call extra ms")] + [
        (name, model.memory_mb.get(name, 512), f"{init_s[name] * 1000:.0f}",
         f"{month.first_invocation_extra_ms[name]:.0f}") for name in bench_cost.FUNCTIONS], indent="    ")
    print(f"  SSM parameters read (cold): {month.secrets_by_function}; a member's stored items: {month.member_bytes} B; "
          f"one ledger item: {month.ledger_item_bytes} B (with overhead and index copies)")
    rows = [("service", "what", "quantity/month", "unit price", "usage $", "fixed $", "note")]
    for line in model.lines:
        rows.append((line.service, line.what, bench_prices.fmt_qty(line.quantity), line.price,
                     bench_prices.fmt_usd(line.usage_usd), bench_prices.fmt_usd(line.fixed_usd), line.note))
    table(rows)
    print(f"  usage (grows with members):       {bench_prices.fmt_usd(model.usage_usd)} / month")
    print(f"  fixed (paid even with no members): {bench_prices.fmt_usd(model.fixed_usd)} / month "
          "(alarms, idle queue polling, the 5-minute schedule, any KMS key or custom metric)")
    print(f"  total:                             {bench_prices.fmt_usd(model.total_usd)} / month")
    print("  the same model at three sizes (fixed part from template.yaml as it is):")
    scales = [bench_prices.build_cost_model(month, init_s, members=n) for n in bench_prices.MEMBER_SCALES]
    table([("members", "usage $/month", "fixed $/month", "total $/month", "per member")] + [
        (f"{m.members:,}", bench_prices.fmt_usd(m.usage_usd), bench_prices.fmt_usd(m.fixed_usd),
         bench_prices.fmt_usd(m.total_usd), f"${m.total_usd / m.members:.6f}") for m in scales], indent="    ")
    print("  assumptions:")
    for assumption in model.assumptions:
        print(f"    - {assumption}")
    print(f"  prices used (us-east-1 list prices recorded {bench_prices.PRICES_AS_OF}):")
    table(bench_prices.price_sources(model), indent="    ")
    report.budget(f"total for {model.members:,} members ≤ ${bench_prices.TOTAL_BUDGET_USD:.2f} a month "
                  f"({bench_prices.fmt_usd(model.total_usd)}) with fixed ≤ ${bench_prices.FIXED_BUDGET_USD:.2f} "
                  f"({bench_prices.fmt_usd(model.fixed_usd)})", model.ok)
    return model, month


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15, help="fresh interpreters per kind for the import timing")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print("Membergate benchmark: ratios and medians measured side by side in this one run (noisy shared host)")
    print(f"machine load average at the start: {_load()}")
    report = Report()
    imports, first_event = report_imports(report, args.runs)
    calls = report_calls(report)
    processor_calls = report_processor_calls(report)
    latency = report_latency(report)
    sweeps = report_sweep(report)
    cost, month = report_cost(report, imports.intake_median_s)
    elapsed = time.perf_counter() - started
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    figures = {
        "imports": asdict(imports) | {"ratio": imports.ratio, "ok": imports.ok},
        "intake_first_event": asdict(first_event) | {"ok": first_event.ok},
        "intake_calls": asdict(calls),
        "processor_calls": [asdict(r) for r in processor_calls],
        "latency": [asdict(f) | {"p50_s": f.p50, "p99_s": f.p99} for f in latency or []],
        "sweeps": [asdict(s) | {"items_per_due_member": s.items_per_due_member} for s in sweeps],
        "cost": asdict(cost) | {"usage_usd": cost.usage_usd, "fixed_usd": cost.fixed_usd,
                                "total_budget_usd": bench_prices.TOTAL_BUDGET_USD,
                                "fixed_budget_usd": bench_prices.FIXED_BUDGET_USD},
        "member_month": asdict(month),
        "failed_budgets": report.failed,
        "elapsed_s": elapsed,
    }
    OUTPUT.write_text(json.dumps(figures, indent=2, default=json_default) + "\n", encoding="utf-8")
    print(f"\nfigures written to {OUTPUT.relative_to(ROOT)}; benchmark took {elapsed:.0f} s")
    if report.failed:
        print(f"{len(report.failed)} budget(s) exceeded:")
        for text in report.failed:
            print(f"  - {text}")
        return 1
    print("all budgets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
