"""The ``tierlake`` command line. Each subcommand's --help explains it; user mistakes print a
one-paragraph error and exit 2 (no traceback)."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from flows.console import print_tier_stats, show_manifest

EXAMPLES = """\
quick start:
  tierlake demo                      generate the demo lake in work/demo and run examples/demo.yaml
  tierlake run examples/dolma_sample.yaml --overwrite
  tierlake validate my_recipe.yaml   check a recipe without running anything

Outputs: OUTPUT/documents/ (kept documents, Parquet shards), OUTPUT/removed/ (what was removed
and why), OUTPUT/quarantine/ (records that could not be read, with file, line and reason) and
OUTPUT/manifest.json, written last (see docs/manifest.md).
"""


def _id_column(value: str) -> str | None:
    return None if value.lower() in ("none", "") else value


RESUME_OPTION: dict[str, Any] = {"action": "store_true",
                 "help": "keep stage checkpoints in OUTPUT/_checkpoints: a re-run after a crash redoes only the unfinished "
                         "stages, and a finished run with the same input and options is kept as it is"}
ID_COLUMN_OPTION: dict[str, Any] = {"type": _id_column, "default": "id", "metavar": "COLUMN",
                    "help": "column holding each document's unique id (default id: used when the input has it, "
                            "else a hash of source + text); none: always hash ids"}

def _quiet_third_parties(quiet: bool) -> None:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    import logging

    logger = logging.getLogger("tierlake")
    if quiet:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        logger.setLevel(logging.WARNING)  # this command is quiet, whatever an earlier one in this process was
    else:  # the runner's one line per stage (started, restored, done) on stderr, as a flow run logs them
        class StderrHandler(logging.StreamHandler):
            """Writes to whatever sys.stderr is at the time (a caller may have replaced it since)."""

            @property
            def stream(self):
                return sys.stderr

            @stream.setter
            def stream(self, _value):
                pass

        if not logger.handlers:
            handler = StderrHandler()
            handler.setFormatter(logging.Formatter("%(asctime)s | %(message)s", "%H:%M:%S"))
            logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # once, on our handler: not again through a root handler (Prefect's console)


def _repo_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _no_space_left(exc: BaseException) -> bool:
    """ENOSPC, raised here or inside a Spark task (then only its text says so)."""
    import errno

    while exc is not None:
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC or "No space left on device" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def _bad_options(exc) -> Exception:
    """A pydantic ValidationError of command-line options as a one-line user error."""
    from flows.errors import RecipeError

    return RecipeError("; ".join(f"{'.'.join(map(str, e['loc'])) or 'options'}: {e['msg']}" for e in exc.errors()))


def cmd_run(args) -> int:
    from connectors.filesystem import list_files
    from connectors.sources import check_source
    from flows.curate import curate
    from flows.recipe import load_recipe

    recipe = load_recipe(args.recipe, args.base_dir)  # fail fast, before Prefect or Spark start
    for src in recipe.sources:
        list_files(src.path)  # a missing or unreadable input is an InputError naming it, not a flow failure
        check_source(src)  # an unusable input (no records, not JSON, no text column): one line, no flow-run traceback
    started = time.time()
    path = curate(recipe_path=os.path.abspath(args.recipe), base_dir=args.base_dir, overwrite=args.overwrite, master=args.master)
    if not args.quiet:
        show_manifest(path, started)
    return 0


def cmd_run_app(args) -> int:
    """The recipe inside a spark-submit application: no Prefect flow of its own (the flow that
    submitted it records its run id through TIERLAKE_FLOW_RUN_ID)."""
    import yaml

    from flows.curate import run_recipe
    from flows.recipe import load_recipe

    recipe = load_recipe(args.recipe, args.base_dir)
    if args.overwrite:
        recipe.output.overwrite = True
    if args.master:
        recipe.spark.master = args.master
    recipe.spark.mode = "local"  # already inside the application
    with open(args.recipe, encoding="utf-8") as fh:
        recipe_dict = yaml.safe_load(fh)
    started = time.time()
    path, _ = run_recipe(recipe, recipe_dict)
    if not args.quiet:
        show_manifest(path, started)
    return 0


def cmd_ingest(args) -> int:
    from connectors.spark_session import SparkSettings
    from flows.ingest_job import run_ingest

    started = time.time()
    stats = run_ingest(args.input, args.output, args.text_column, args.id_column,
                       spark_settings=SparkSettings(master=args.master or "local[*]"), resume=args.resume)
    if not args.quiet:
        print(f"ingest: {stats['documents_in']} records -> {stats['documents']} documents, quarantined "
              f"{stats['quarantined'] or 0} ({time.time() - started:.1f} s)")
        print(f"  {args.output}/documents/  {args.output}/quarantine/  {args.output}/stats.json")
    return 0


def cmd_report(args) -> int:
    from connectors.filesystem import InputError
    from connectors.report import write_report

    path = os.path.join(args.run_dir, "manifest.json")
    if not os.path.exists(path):
        raise InputError(f"{args.run_dir}: no manifest.json (a finished `tierlake run` output folder is needed)")
    with open(path, encoding="utf-8") as fh:
        manifest = json.load(fh)
    from tiers.samples import run_samples

    out = write_report(args.run_dir, manifest, run_samples(args.run_dir, manifest))
    if not args.quiet:
        print(f"report: {out}")
    return 0


def cmd_inspect(args) -> int:
    from pydantic import ValidationError

    from flows.console import page, render_documents, render_reasons
    from tiers.samples import InspectQuery, query, reasons

    if args.list_reasons:  # a folder that is not a run is an InputError: one line, exit 2
        listed = reasons(args.run_dir)
        if args.json:
            print(json.dumps(listed, indent=2))
        else:
            page(render_reasons(listed), args.no_pager)
        return 0
    try:
        given = {"tier": args.tier, "reason": args.reason, "source": args.source, "sort": args.sort,
                 "ascending": args.ascending, "n": args.n, "seed": args.seed, "text_chars": args.chars}
        q = InspectQuery(**{k: v for k, v in given.items() if v is not None})
        if args.full:
            q.text_chars = None
    except ValidationError as exc:
        raise _bad_options(exc) from None
    docs = query(args.run_dir, q)
    if args.json:
        for d in docs:
            print(json.dumps(d, ensure_ascii=False))
        return 0
    if not docs:
        print("inspect: no document matches (`tierlake inspect RUN_DIR --list-reasons` lists the tiers and reasons present)")
        return 0
    page(render_documents(docs), args.no_pager)
    return 0


def cmd_package(args) -> int:
    from flows.spark_submit import package

    path = package(args.output)
    if not args.quiet:
        print(f"{path}  ({os.path.getsize(path):,} bytes) — pass it to spark-submit with --py-files")
    return 0


def cmd_demo(args) -> int:
    from connectors.demo_lake import generate_demo_lake
    from flows.curate import curate
    from flows.recipe import load_recipe

    workdir = os.path.abspath(args.workdir)
    recipe_path = os.path.join(_repo_root(), "examples", "demo.yaml")
    started = time.time()
    summary = generate_demo_lake(os.path.join(workdir, "lake"), seed=args.seed, n_docs=args.docs)
    if not args.quiet:
        print(f"demo lake: {workdir}/lake ({summary['records_written']} records, {summary['tables']} tables, ground truth in lake/ground_truth)")
    load_recipe(recipe_path, workdir)
    path = curate(recipe_path=recipe_path, base_dir=workdir, overwrite=True, master=args.master)
    if not args.quiet:
        show_manifest(path, started)
    return 0


def cmd_validate(args) -> int:
    from flows.recipe import load_recipe

    recipe = load_recipe(args.recipe, args.base_dir)
    print(f"recipe {args.recipe} is valid: {len(recipe.sources)} source(s), output {recipe.output.path}")
    return 0


def cmd_dedup(args) -> int:
    from pydantic import ValidationError

    from connectors.spark_session import SparkSettings
    from curation.params import ExactDedupParams, KeepPolicy, NearDedupParams
    from flows.dedup_job import run_dedup

    try:
        rule, _, column = args.keep.partition(":")
        keep = KeepPolicy(rule={"smallest-id": "smallest_id", "longest": "longest", "score": "highest_score"}.get(rule, rule),
                          score_column=column or None)
        near = NearDedupParams(threshold=args.threshold, num_perm=args.num_perm, ngram=args.ngram, unit=args.unit,
                               bands=args.bands, rows=args.rows, verify=args.verify, keep=keep, seed=args.seed)
        exact = ExactDedupParams(keep=keep)
    except ValidationError as exc:
        raise _bad_options(exc) from None
    from flows.errors import RecipeError

    if args.engine == "local" and args.master:
        raise RecipeError("--master is a Spark option; --engine local runs in this process (use --threads)")
    if args.engine == "spark" and args.threads:
        raise RecipeError("--threads is for --engine local; Spark's parallelism comes from --master (local[N] or a cluster)")
    if args.threads is not None and args.threads < 1:
        raise RecipeError("--threads must be at least 1")
    settings = SparkSettings(master=args.master or "local[*]", driver_memory=args.driver_memory)
    started = time.time()
    stats = run_dedup(args.input, args.output, exact, near, text_column=args.text_column, id_column=args.id_column,
                      index_dir=args.index, spark_settings=settings, engine=args.engine, threads=args.threads, resume=args.resume)
    if not args.quiet:
        near_d = stats["stages"][2]["details"]
        print(f"dedup: {stats['documents_in']} documents in, {stats['kept']} kept, removed {stats['removed']}, "
              f"quarantined {stats['quarantined']} ({time.time() - started:.1f} s)")
        if near_d:
            print(f"  LSH {near_d.get('bands')}x{near_d.get('rows')}, candidate edges {near_d.get('candidate_edges')}, "
                  f"dropped by verification {near_d.get('edges_dropped_by_verification')}")
        print(f"  {args.output}/kept/  {args.output}/removed/  {args.output}/stats.json")
    return 0


def _policy(args):
    from flows.recipe import load_tier_policy
    from tiers.policy import TierPolicy

    policy = load_tier_policy(args.recipe) if args.recipe else TierPolicy()
    if getattr(args, "quality_model", None):
        policy.quality_model, policy.quality_training = os.path.abspath(args.quality_model), None
    if getattr(args, "targets", None):
        policy.targets = [os.path.abspath(t) for t in args.targets]
    return policy


def cmd_tier(args) -> int:
    from connectors.spark_session import SparkSettings
    from flows.recipe import load_dedup_params
    from flows.tier_job import run_tier

    policy = _policy(args)
    exact, near = load_dedup_params(args.recipe) if args.recipe else (None, None)  # a recipe's dedup, not the defaults
    started = time.time()
    stats = run_tier(args.input, args.output, policy, text_column=args.text_column, id_column=args.id_column,
                     dedup=args.dedup, spark_settings=SparkSettings(master=args.master or "local[*]", driver_memory=args.driver_memory),
                     exact_params=exact, near_params=near, resume=args.resume)
    if not args.quiet:
        print_tier_stats(stats, args.output, time.time() - started)
    return 0


def cmd_retier(args) -> int:
    from connectors.spark_session import SparkSettings
    from flows.tier_job import run_retier

    policy = _policy(args)
    started = time.time()
    stats = run_retier(args.run_dir, args.output, policy, SparkSettings(master=args.master or "local[*]"))
    if not args.quiet:
        print_tier_stats(stats, args.output, time.time() - started)
    return 0


def cmd_score(args) -> int:
    from pydantic import ValidationError

    from connectors.spark_session import SparkSettings
    from curation.params import ScoreParams
    from flows.score_job import run_score

    try:
        params = ScoreParams(targets=[os.path.abspath(t) if "://" not in t else t for t in args.targets],
                             decontaminate=[os.path.abspath(t) if "://" not in t else t for t in (args.decontaminate or [])],
                             sample=args.sample, top_p=args.top_p, embedder=args.embedder, mode=args.mode, seed=args.seed,
                             ngram=args.ngram)
        if args.classifier_features:
            params.classifier = params.classifier.with_features(args.classifier_features, args.classifier_chars)
    except ValidationError as exc:
        raise _bad_options(exc) from None
    started = time.time()
    stats = run_score(args.input, args.output, params, text_column=args.text_column, id_column=args.id_column,
                      spark_settings=SparkSettings(master=args.master or "local[*]", driver_memory=args.driver_memory),
                      resume=args.resume)
    if not args.quiet:
        ev = stats["evaluation"]
        print(f"score: {stats['scored']} documents scored ({time.time() - started:.1f} s), mode {ev['mode']}, embedder "
              f"{ev['embedder']}, {ev['targets']} target examples ({', '.join(ev['target_benchmarks'])})")
        if "heldout_auc" in ev:
            print(f"  classifier vs direct ranks on {ev['heldout']} held-out sampled documents: ROC-AUC {ev['heldout_auc']:.3f}, "
                  f"precision at top {100 * ev['top_p']:.0f}% {ev['heldout_precision_at_top_p']:.3f} (base rate {ev['heldout_base_rate']:.3f})")
        if "crossfit_auc" in ev:
            print(f"  cross-fitted over all {ev['sample']} sampled documents ({ev['folds']} folds): ROC-AUC {ev['crossfit_auc']:.3f}, "
                  f"precision at top {100 * ev['top_p']:.0f}% {ev['crossfit_precision_at_top_p']:.3f}")
        print(f"  contaminated: {ev['contaminated']} documents share a {args.ngram}-word n-gram with "
              f"{ev['decontamination_examples']} test examples")
        print(f"  {args.output}/scores/  {args.output}/stats.json")
    return 0


def cmd_containment(args) -> int:
    from pydantic import ValidationError

    from curation.params import ContainmentParams
    from flows.containment_job import run_containment

    try:
        params = ContainmentParams(min_ratio=args.min_ratio, sample=args.sample, seed=args.seed)
    except ValidationError as exc:
        raise _bad_options(exc) from None
    res = run_containment(args.lake, args.output, params)
    if not args.quiet:
        f = res["funnel"]
        print(f"containment: {f['tables']} tables ({f['catalog']['cached']} from the catalog cache), "
              f"{f['ordered_pairs']:,} ordered pairs -> " + " -> ".join(f"{s['stage']} {s['pairs_left']:,}" for s in f["stages"])
              + f" ({f['seconds']:.1f} s)")
        print(f"  {args.output}/edges.parquet  {args.output}/funnel.json  {args.output}/report.md")
    return 0


def cmd_containment_plan(args) -> int:
    from curation.table_deletion import apply_plan, make_plan
    from flows.containment_job import load_costs

    plan = make_plan(args.output, load_costs(args.costs))
    if not args.quiet:
        print(f"deletion plan ({plan['method']}): delete {len(plan['delete'])} of the contained tables, "
              f"freeing {plan.get('bytes_freed', 0):,} bytes, saving ${plan['savings_usd_month']:.6g}/month "
              f"({plan['candidate_edges']} candidate edges within latency bounds)")
        for d in plan["delete"]:
            print(f"  {d['table']}  <- rebuild from {d['parent']} ({d['rebuild_seconds']} s)")
        print(f"  {args.output}/plan.json")
    if args.apply:
        if not args.trash:
            from flows.errors import RecipeError
            raise RecipeError("--apply needs --trash DIR (where deleted tables go, with their recipes)")
        moved = apply_plan(args.output, args.trash)
        if not args.quiet:
            print(f"applied: moved {len(moved)} table(s) to {args.trash} (restore with `tierlake containment restore "
                  f"{args.trash}/<table>`)")
    return 0


def cmd_containment_restore(args) -> int:
    from curation.table_deletion import restore

    dest = restore(args.entry)
    if not args.quiet:
        print(f"restored {dest}")
    return 0


def cmd_select_qqt(args) -> int:
    from flows.errors import RecipeError
    from tiers.qqt import Pool, frontier

    try:
        with open(args.params, encoding="utf-8") as fh:
            params = json.load(fh)
        pools = [Pool(str(p["name"]), float(p["b"]), float(p["tau"]), float(p["size"])) for p in params["pools"]]
        a, d = float(params["a"]), float(params["d"])
        budgets = [float(x) for x in args.budgets.split(",") if x.strip()]
    except FileNotFoundError:
        raise RecipeError(f"params file not found: {args.params}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise RecipeError(f"{args.params}: expected {{\"a\": ..., \"d\": ..., \"pools\": [{{\"name\", \"b\", \"tau\", "
                          f"\"size\"}}, ...]}} and --budgets as numbers ({exc})") from None
    if not pools or not budgets:
        raise RecipeError("give at least one pool and one budget")
    try:
        result = frontier(pools, a, d, budgets, args.tau_convention)
    except ValueError as exc:
        raise RecipeError(str(exc)) from None
    print(json.dumps({"frontier": result, "tau_convention": args.tau_convention}, indent=2))
    return 0


def cmd_select(args) -> int:
    from pydantic import ValidationError

    from connectors.spark_session import SparkSettings
    from flows.errors import RecipeError
    from flows.select_job import run_select
    from tiers.params import QQTSettings, SelectParams
    from tiers.select_stage import mix_basis

    qqt = {"tau_convention": args.tau_convention}
    if args.qqt_params:
        try:
            with open(args.qqt_params, encoding="utf-8") as fh:
                fitted = json.load(fh)
            qqt.update({"a": fitted.get("a"), "d": fitted.get("d", 0.1),
                        "pools": {p["name"]: {"b": p["b"], "tau": p["tau"]} for p in fitted.get("pools", [])}})
        except FileNotFoundError:
            raise RecipeError(f"QQT params file not found: {args.qqt_params}") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise RecipeError(f"{args.qqt_params}: expected {{\"a\", \"d\", \"pools\": [{{\"name\": \"source/tier\", "
                              f"\"b\", \"tau\"}}]}} ({exc})") from None
    try:
        params = SelectParams(enabled=True, budget_tokens=args.budget, tiers=args.tiers.split(","), max_epochs=args.max_epochs,
                              laws=os.path.abspath(args.laws) if args.laws else None,
                              keep_top={"*": args.keep_top} if args.keep_top else {},
                              alignment_weight=args.alignment_weight,
                              targets=[os.path.abspath(t) if "://" not in t else t for t in (args.targets or [])],
                              embedder=args.embedder, seed=args.seed, qqt=QQTSettings(**qqt))
    except ValidationError as exc:
        raise _bad_options(exc) from None
    started = time.time()
    stats = run_select(args.run_dir, args.output, params, SparkSettings(master=args.master or "local[*]"))
    if not args.quiet:
        mix = stats["mix"]
        print(f"select: budget {args.budget:,.0f} tokens, {mix_basis(mix)}"
              + (f", OT to targets {mix['alignment_ot']:.4g} (uniform mix {mix['uniform_ot']:.4g})"
                 if mix["alignment_ot"] is not None else "") + f" ({time.time() - started:.1f} s)")
        for p in mix["pools"]:
            print(f"  {p['pool']:<24} share {p['share']:.3f}  epochs {p['epochs']:.2f}  selected {p['selected_tokens']:>10,} "
                  f"tokens of {p['pool_tokens']:>10,.0f}")
        print(f"  {args.output}/selection/documents/  {args.output}/selection/mix.json  {args.output}/stats.json")
    return 0


def cmd_probe(args) -> int:
    from pydantic import ValidationError

    from flows.probe_job import run_probe
    from tiers.probe import ProbeParams

    try:
        params = ProbeParams(**{k: v for k, v in {
            "sizes": _numbers(args.sizes), "repeats": _ints(args.repeats),
            "mixtures": args.mixtures, "mixture_tokens": args.mixture_tokens, "mixture_alpha": args.mixture_alpha,
            "recipe": args.recipe,
            "seeds": _ints(args.seeds), "device": args.device,
            "mixture_seeds": _ints(args.mixture_seeds),
            "eval_bytes": args.eval_bytes, "seed": args.seed, "min_pool_bytes": args.min_pool_bytes}.items() if v is not None})
    except (ValidationError, ValueError) as exc:
        raise _bad_options(exc) from None
    bars = _probe_progress(args.quiet)
    try:
        summary = run_probe(args.run_dir, args.output, args.targets or [], args.evaluate or [], params,
                            prepare_only=args.prepare_only, progress=bars.probe, step_progress=bars.step)
    except ValueError as exc:
        from flows.errors import RecipeError

        raise RecipeError(str(exc)) from None
    finally:
        bars.close()
    if args.quiet:
        return 0
    plan = summary["plan"]
    if summary.get("prepared"):
        print(f"probe: prepared {args.output} ({len(plan['pools'])} pools, {summary['probes']} probes planned); run the "
              f"grid with `python -m tiers.probe run {args.output} --device cuda` on a GPU machine, then "
              f"`tierlake probe {args.run_dir} {args.output}` here to fit")
        return 0
    from flows.console import print_laws

    print_laws(summary["laws"], summary["probes"], args.output)
    return 0


def _ints(text: str | None) -> list[int] | None:
    numbers = _numbers(text)
    return [int(x) for x in numbers] if numbers is not None else None


def _numbers(text: str | None) -> list[float] | None:
    if not text:
        return None
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"expected comma-separated numbers, got {text!r}") from None


class _probe_progress:
    """tqdm bars on a terminal: the grid (probes) and the current probe's steps."""

    def __init__(self, quiet: bool):
        self.on = not quiet and sys.stderr.isatty()
        self.grid = self.inner = None

    def probe(self, done, total, row):
        if not self.on:
            return
        from tqdm import tqdm

        if self.grid is None:
            self.grid = tqdm(total=total, desc="probes", unit="probe")
        self.grid.set_postfix_str(f"{row['pool']} loss {row['loss']:.3f} bpb")
        self.grid.update(1)

    def step(self, step, steps):
        if not self.on:
            return
        from tqdm import tqdm

        if self.inner is None or self.inner.total != steps or step < self.inner.n:
            if self.inner is not None:
                self.inner.close()
            self.inner = tqdm(total=steps, desc="  training", unit="step", leave=False)
        self.inner.update(step - self.inner.n)

    def close(self):
        for bar in (self.inner, self.grid):
            if bar is not None:
                bar.close()


def cmd_validate_mix(args) -> int:
    from flows.errors import RecipeError
    from tiers.mix_validation import markdown, mix_budget, validate_mix
    from tiers.probe import write_json_atomic
    from tiers.proxy_lm import RECIPES

    if args.recipe not in RECIPES:
        raise RecipeError(f"--recipe must be one of {', '.join(sorted(RECIPES))}, got {args.recipe!r}")
    try:
        with open(args.mix, encoding="utf-8") as fh:
            mix = json.load(fh)
        result = validate_mix(args.probe_dir, mix, mix_budget(mix, args.budget), args.recipe, tuple(_ints(args.seeds) or ()),
                              args.device, tuple(_numbers(args.multipliers) or ()), args.max_epochs,
                              progress=(lambda line: None) if args.quiet else print)
    except FileNotFoundError as exc:
        raise RecipeError(f"not found: {exc.filename} (PROBE_DIR comes from `tierlake probe`, MIX from `tierlake select --laws`)") from None
    except (ValueError, KeyError) as exc:
        raise RecipeError(str(exc)) from None
    write_json_atomic(args.output, result)
    if not args.quiet:
        print(markdown(result))
    return 0


def cmd_train_quality(args) -> int:
    from connectors.targets import load_target_texts
    from curation.params import QualityModelParams
    from curation.quality_model import train_quality_model

    pos, neg = load_target_texts(args.positive), load_target_texts(args.negative)
    model = train_quality_model(pos, neg, QualityModelParams(folds=args.folds, seed=args.seed, C=args.C),
                                sources={"positive": args.positive, "negative": args.negative})
    model.save(args.output)
    cv = model.meta["cross_validation"]
    if not args.quiet:
        print(f"quality model: {len(pos)} positive, {len(neg)} negative examples; held-out ROC-AUC "
              f"{cv['auc_mean']:.3f} +- {cv['auc_std']:.3f} over {cv['folds']} folds (pooled {cv['auc_pooled']:.3f})")
        print(f"  saved to {args.output}/ (model.json + weights.npz; no pickle)")
    return 0


def model_option(parser: argparse.ArgumentParser, flag: str, model: type, field: str, help: str | None = None,
                 **kwargs) -> None:
    """An option whose default comes from the parameters model's field (its help from the field's
    description unless given): the CLI, recipes and flows share one default."""
    info = model.model_fields[field]  # type: ignore[attr-defined]
    default = info.get_default(call_default_factory=True)
    if "action" not in kwargs and "choices" not in kwargs and isinstance(default, (int, float, str)) \
            and not isinstance(default, bool):
        kwargs.setdefault("type", type(default))
    shown = ("on" if default else "off") if isinstance(default, bool) else default
    text = f"{help or info.description or field.replace('_', ' ')} (default {shown})"
    parser.add_argument(flag, default=default, help=text.replace("%", "%%"), **kwargs)


def build_parser() -> argparse.ArgumentParser:
    from curation.params import ContainmentParams, NearDedupParams, QualityModelParams, ScoreParams
    from tiers.params import SelectParams

    parser = argparse.ArgumentParser(
        prog="tierlake",
        description="Curate raw corpora into training mixes: ingest, dedup, tiers, scoring and selection "
                    "on Spark, orchestrated by Prefect, with a manifest for every run.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quiet", action="store_true", help="print only errors (for scheduled runs)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run a YAML recipe through the Prefect flow",
                         description="Run every stage of a recipe through the `curate` Prefect flow (ephemeral "
                                     "Prefect unless PREFECT_API_URL points at a server) and write the manifest last.")
    run.add_argument("recipe", help="path to a YAML recipe (see examples/)")
    run.add_argument("--master", help="Spark master URL, overriding the recipe (e.g. local[2], spark://host:7077)")
    run.add_argument("--overwrite", action="store_true", help="replace an earlier run in the output folder")
    run.add_argument("--base-dir", help="resolve relative recipe paths against this folder (default: the recipe's folder)")
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser("demo", help="generate the demo lake and run the full demo recipe",
                          description="Generate a seeded demo lake (documents, duplicates, malformed records, tables, "
                                      "targets, ground truth) if absent, then run examples/demo.yaml on it with local Spark.")
    demo.add_argument("--workdir", default="work/demo", help="where the lake and the outputs go (default: work/demo)")
    demo.add_argument("--docs", type=int, default=20_000, help="base documents to generate (default 20000)")
    demo.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
    demo.add_argument("--master", help="Spark master URL (default: local[*])")
    demo.set_defaults(func=cmd_demo)

    dd = sub.add_parser(
        "dedup", help="remove exact and near duplicates from one input (MinHash LSH; on Spark or in one process)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Exact dedup on normalized text (NFKC, lower-case, whitespace collapsed), then near-dup: word "
                    "n-gram shingles, MinHash (datasketch's affine32 scheme), LSH bands, star edges, optional exact-"
                    "Jaccard verification, connected components, one document kept per cluster.",
        epilog="outputs: OUTPUT/kept/ (Parquet, all input columns), OUTPUT/removed/ (id, duplicate_of = the id kept, "
               "kind = exact|near, cluster_size, reason), OUTPUT/stats.json (written last)\n\n"
               "example: tierlake dedup data/crawl/ out/crawl-dedup --threshold 0.8 --index out/dedup-index")
    dd.add_argument("input", help="file or folder: JSONL (.gz/.zst), Parquet or CSV, local or s3://")
    dd.add_argument("output", help="output folder")
    model_option(dd, "--threshold", NearDedupParams, "threshold", "Jaccard threshold for near duplicates")
    model_option(dd, "--num-perm", NearDedupParams, "num_perm", "MinHash permutations")
    model_option(dd, "--ngram", NearDedupParams, "ngram", "shingle size in words, or characters with --unit char")
    model_option(dd, "--unit", NearDedupParams, "unit", "shingle unit", choices=["word", "char"])
    dd.add_argument("--bands", type=int, help="LSH bands (with --rows); default: datasketch's search from threshold and num-perm, weighing "
                         "missed duplicates 0.95 when --verify is on (14x8 for 0.8 and 112), 0.5 with --no-verify (9x12)")
    dd.add_argument("--rows", type=int, help="rows per band (with --bands)")
    dd.add_argument("--text-column", default="text", help="column holding the text (default text)")
    dd.add_argument("--id-column", **ID_COLUMN_OPTION)
    dd.add_argument("--keep", default="smallest-id",
                    help="which document of a cluster stays: smallest-id (default), longest, or score:COLUMN (highest value)")
    model_option(dd, "--verify", NearDedupParams, "verify", "check candidate pairs by exact Jaccard before clustering",
                 action=argparse.BooleanOptionalAction)
    dd.add_argument("--index", help="folder of a dedup index: dedup against earlier runs saved there, then add this run")
    model_option(dd, "--seed", NearDedupParams, "seed", "MinHash seed")
    dd.add_argument("--engine", choices=["spark", "local"], default="spark",
                    help="spark (default): a Spark job, local or on a cluster (--master); local: one process on this "
                         "machine without a JVM, the same results and outputs, for inputs that fit in memory (peak about "
                         "5x the input's text); 3-14x faster than spark on one machine (docs/dedup.md)")
    dd.add_argument("--threads", type=int, help="threads of --engine local (default: the cores this process may use)")
    dd.add_argument("--master", help="Spark master URL (default local[*])")
    dd.add_argument("--driver-memory", default="4g",
                    help="Spark driver heap, e.g. 8g (in local mode it also holds the executors' work; default 4g)")
    dd.add_argument("--resume", **RESUME_OPTION)
    dd.set_defaults(func=cmd_dedup)

    tier = sub.add_parser(
        "tier", help="assign every document a tier L0-L4 with the reason it stopped there",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Ingest, exact and near dedup, then per-document signals (Gopher quality and repetition, C4, "
                    "FineWeb, fastText language id, quality model score, target similarity) and tiers: L0 raw, L1 "
                    "filtered, L2 quality-selected, L3 stricter quality and target-aligned, L4 holding verified "
                    "knowledge units.",
        epilog="outputs: OUTPUT/documents/tier=L0..L4/ (every document once, with tier_reasons), OUTPUT/signals/, "
               "OUTPUT/units/ (verified L4 units with provenance), OUTPUT/units_rejected/, OUTPUT/stats.json (last)\n\n"
               "example: tierlake tier data/crawl/ out/tiers --recipe examples/tiers.yaml\n"
               "without --recipe or --quality-model every document stops at L1 at most (no quality model)")
    tier.add_argument("input", help="file or folder: JSONL (.gz/.zst), Parquet or CSV, local or s3://")
    tier.add_argument("output", help="output folder")
    tier.add_argument("--recipe", help="YAML tier policy, or a recipe whose stages.tier is used")
    tier.add_argument("--quality-model", help="folder of a model from `tierlake train-quality` (overrides the recipe)")
    tier.add_argument("--targets", nargs="+", help="JSONL target examples for target similarity (overrides the recipe)")
    tier.add_argument("--text-column", default="text", help="column holding the text (default text)")
    tier.add_argument("--id-column", **ID_COLUMN_OPTION)
    tier.add_argument("--dedup", action=argparse.BooleanOptionalAction, default=True, help="exact and near dedup first (default on)")
    tier.add_argument("--master", help="Spark master URL (default local[*])")
    tier.add_argument("--driver-memory", default="4g", help="Spark driver heap (default 4g)")
    tier.add_argument("--resume", **RESUME_OPTION)
    tier.set_defaults(func=cmd_tier)

    rt = sub.add_parser("retier", help="re-assign tiers of an earlier `tierlake tier` run with a new policy, reusing its signals",
                        description="Reads RUN_DIR/signals and RUN_DIR/documents, applies the policy's thresholds to the "
                                    "stored signals (no text processing except L4 unit extraction) and writes a new run.")
    rt.add_argument("run_dir", help="output folder of `tierlake tier`")
    rt.add_argument("output", help="new output folder")
    rt.add_argument("--recipe", help="YAML tier policy")
    rt.add_argument("--master", help="Spark master URL (default local[*])")
    rt.set_defaults(func=cmd_retier, quality_model=None, targets=None)

    sc = sub.add_parser(
        "score", help="BETR: score every document by similarity to target benchmark examples; flag contamination",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Benchmark-targeted ranking (arXiv 2507.12466): embed the targets and a sample of documents, rank the "
                    "sample under every target example, label its top p%% positive, train a light classifier and score "
                    "the whole input with it on Spark (--mode sample), or embed every document (--mode direct). "
                    "Documents sharing an N-word n-gram with a test split are flagged contaminated.",
        epilog="outputs: OUTPUT/scores/ (id, betr_score, betr_rank_pct, contaminated, contamination_ngrams), "
               "OUTPUT/sample.parquet, OUTPUT/model/, OUTPUT/stats.json (last)\n\n"
               "example: tierlake score data/ out/betr --targets bench/gsm8k/train.jsonl bench/mmlu/dev "
               "--decontaminate bench/gsm8k/test.jsonl")
    sc.add_argument("input", help="file or folder: JSONL (.gz/.zst), Parquet or CSV, local or s3://")
    sc.add_argument("output", help="output folder")
    sc.add_argument("--targets", nargs="+", required=True,
                    help="benchmark train/dev files or folders: text JSONL, GSM8K JSONL, MMLU CSV, llm-foundry or PIQA JSONL")
    sc.add_argument("--decontaminate", nargs="+", help="benchmark test files or folders to check documents against")
    model_option(sc, "--sample", ScoreParams, "sample", "documents ranked directly and used to train the classifier")
    model_option(sc, "--top-p", ScoreParams, "top_p", "fraction of the sample labelled positive")
    model_option(sc, "--embedder", ScoreParams, "embedder", "static (WordLlama) or minilm (extra)", choices=["static", "minilm"])
    model_option(sc, "--mode", ScoreParams, "mode", "sample + classifier, or direct: embed every document",
                 choices=["sample", "direct"])
    sc.add_argument("--classifier-features", choices=["ngrams", "ngrams_stripped", "embedding", "ngrams+embedding"],
                    help="sample mode's classifier: ngrams (default); ngrams+embedding keeps the topic of one-subject "
                         "targets instead of their test format (docs/scoring.md, 'BETR on topic')")
    sc.add_argument("--classifier-chars", type=int, help="characters of each document the classifier reads "
                                                         "(default: 1000 with an embedding, else the whole text)")
    model_option(sc, "--ngram", ScoreParams, "ngram", "words in a decontamination n-gram")
    model_option(sc, "--seed", ScoreParams, "seed", "seed of the sample and the classifier")
    sc.add_argument("--text-column", default="text")
    sc.add_argument("--id-column", **ID_COLUMN_OPTION)
    sc.add_argument("--master", help="Spark master URL (default local[*])")
    sc.add_argument("--driver-memory", default="4g")
    sc.add_argument("--resume", **RESUME_OPTION)
    sc.set_defaults(func=cmd_score)

    ct = sub.add_parser(
        "containment", help="find tables contained in other tables of a lake (R2D2 funnel)",
        description="Catalog the lake (Parquet files and datasets, Hive partitions, CSV, Delta) from metadata, then "
                    "schema containment graph -> min-max pruning -> content pruning -> exact verification "
                    "(R2D2, arXiv 2312.13427).",
        epilog="outputs: OUTPUT/edges.parquet (child, parent, ratio, child_rows, verified), OUTPUT/funnel.json, "
               "OUTPUT/report.md, OUTPUT/catalog.json (cache: an unchanged lake is not re-read)")
    ct.add_argument("lake", help="lake root folder or s3:// URI")
    ct.add_argument("output", help="output folder")
    model_option(ct, "--min-ratio", ContainmentParams, "min_ratio", "share of the child's distinct rows found in the parent")
    model_option(ct, "--sample", ContainmentParams, "sample", "child rows probed per pair in content pruning")
    model_option(ct, "--seed", ContainmentParams, "seed", "seed of the content probe")
    ct.set_defaults(func=cmd_containment)

    cp = sub.add_parser("containment-plan", help="(also: `tierlake containment plan`) decide which contained tables to delete",
                        description="Integer program (scipy milp/HiGHS; greedy above max_exact_edges): delete contained "
                                    "tables to save storage minus access cost, each rebuildable from a kept parent within "
                                    "its latency bound. --apply moves them to --trash with a recipe.")
    cp.add_argument("output", help="output folder of `tierlake containment`")
    cp.add_argument("--costs", help="YAML: storage_usd_per_gb_month, compute_usd_per_hour, read_mb_per_s, "
                                    "default_accesses_per_month, accesses_csv, default_latency_seconds, latency_seconds")
    cp.add_argument("--apply", action="store_true", help="move the planned tables to --trash (explicit, never by default)")
    cp.add_argument("--trash", help="trash root for --apply")
    cp.set_defaults(func=cmd_containment_plan)
    cr = sub.add_parser("containment-restore", help="(also: `tierlake containment restore`) rebuild a deleted table from its parent")
    cr.add_argument("entry", help="TRASH/<table path> written by --apply")
    cr.set_defaults(func=cmd_containment_restore)

    sel = sub.add_parser(
        "select", help="choose the training mix for a token budget and materialize it (also: `tierlake select qqt`)",
        description="Pools are (source, tier) of an earlier run's tiers. The mix maximizes QQT-predicted accuracy "
                    "(quality through each pool's utility, quantity through repetition decay; Goyal et al., CVPR 2024) "
                    "minus --alignment-weight x the OT distance of the mix to target examples (projektor, Kang et al., "
                    "NeurIPS 2023), with no pool repeated more than --max-epochs times. Writes the selected rows, the "
                    "mix and stats. `tierlake select qqt --params P.json --budgets ...` prints the QQT frontier instead.")
    sel.add_argument("run_dir", help="a curate run (with the tier stage) or a `tierlake tier` output")
    sel.add_argument("output", help="output folder")
    sel.add_argument("--budget", type=float, required=True, help="training budget in tokens, e.g. 2e9")
    sel.add_argument("--tiers", default="L1,L2,L3,L4", help="eligible tiers (default L1,L2,L3,L4; L0 never)")
    model_option(sel, "--max-epochs", SelectParams, "max_epochs", "maximum repetitions of any pool")
    model_option(sel, "--alignment-weight", SelectParams, "alignment_weight",
                 "weight of the OT distance to --targets (0 = QQT alone; 0.05 = closing the uniform mix's "
                 "distance is worth 5 accuracy points)")
    sel.add_argument("--targets", nargs="+", help="target example JSONL files (benchmark train/dev) for alignment")
    sel.add_argument("--qqt-params", help='fitted laws JSON {"a", "d", "pools": [{"name": "source/tier", "b", "tau"}]}; '
                                          "default: the T-MARS fit as a per-tier prior")
    sel.add_argument("--laws", help="laws.json from `tierlake probe`: choose the mix that minimizes the fitted laws' "
                                    "predicted target loss (without it the mix follows priors, and says so)")
    sel.add_argument("--keep-top", type=float, help="keep only this top fraction of every pool's tokens by betr_score "
                                                    "(BETR's 'keep the top X%%'; needs a run with the score stage)")
    sel.add_argument("--tau-convention", choices=["scaled", "plain"], default="scaled")
    model_option(sel, "--embedder", SelectParams, "embedder", "embedder of the alignment term", choices=["static", "minilm"])
    model_option(sel, "--seed", SelectParams, "seed", "seed of the embedding sample")
    sel.add_argument("--master", help="Spark master (default local[*])")
    sel.set_defaults(func=cmd_select)
    qq = sub.add_parser("select-qqt", help="(also: `tierlake select qqt`) best top-k pool union per budget from fitted QQT laws",
                        description="Predict accuracy = 1 - error of every top-k union of pools (in quality order) at each "
                                    "budget of samples seen, with repetition decay b_j = b*0.5^(j/tau); prints JSON.")
    qq.add_argument("--params", required=True, help='JSON: {"a": .., "d": .., "pools": [{"name", "b", "tau", "size"}, ...]} best pool first')
    qq.add_argument("--budgets", required=True, help="comma-separated samples seen, e.g. 32e6,128e6,640e6")
    qq.add_argument("--tau-convention", choices=["scaled", "plain"], default="scaled",
                    help="scaled (default, the reference code): each tau multiplied by the number of pools combined")
    qq.set_defaults(func=cmd_select_qqt)

    pr = sub.add_parser(
        "probe", help="train proxy language models on a run's pools and fit the laws that selection uses",
        description="For every pool (source/tier of a curate run) trains small byte-level proxy models from scratch at "
                    "several unique-byte sizes and repetition levels, plus random mixtures of all pools, and scores each "
                    "on held-out target text (bits per byte on the --targets dev/validation splits). Fits QQT laws per "
                    "pool (a, b, tau, d; Goyal et al., CVPR 2024) with held-out checks and projektor's predictor on the "
                    "mixtures (Kang et al., NeurIPS 2023). Writes OUT/probes.parquet and OUT/laws.json for "
                    "`tierlake select --laws`. Resumable: probes already in OUT are reused.")
    pr.add_argument("run_dir", nargs="?", help="a curate run with the tier stage (not needed when OUT is prepared)")
    pr.add_argument("output", help="probe folder (plan, inputs, probes.jsonl, probes.parquet, laws.json)")
    pr.add_argument("--targets", nargs="+", help="benchmark dev/validation files or folders: the loss the laws predict")
    pr.add_argument("--evaluate", nargs="+", help="benchmark test files for the final check (bench/mix_validation.py)")
    pr.add_argument("--sizes", help="unique bytes per pool probe, comma-separated (default 2.5e5,5e5,1e6,2e6)")
    pr.add_argument("--repeats", help="passes over those bytes, comma-separated (default 1,2,4,8)")
    pr.add_argument("--mixtures", type=int, help="random mixtures for projektor's predictor (default 40)")
    pr.add_argument("--mixture-tokens", type=float, help="bytes per mixture probe (default 2e6)")
    pr.add_argument("--mixture-seeds", help="training seeds per mixture probe, comma-separated (default: the first of "
                                            "--seeds); the predictor is fitted on each mixture's mean loss")
    pr.add_argument("--mixture-alpha", type=float, help="Dirichlet concentration of the mixtures (default 1; below 1 "
                                                         "covers mixes dominated by one pool, where selection may go)")
    pr.add_argument("--recipe", help="proxy size: tiny (tests, CPU), small, base, large (default small)")
    pr.add_argument("--seeds", help="training seeds per probe, comma-separated (default 0)")
    pr.add_argument("--device", choices=["auto", "cpu", "cuda"], help="where to train (default auto: CUDA when jax sees it)")
    pr.add_argument("--min-pool-bytes", type=float, help="leave out pools smaller than this (default: the smallest size)")
    pr.add_argument("--eval-bytes", type=int, help="target bytes scored per benchmark (default 1e6)")
    pr.add_argument("--seed", type=int, help="seed of the mixture draws, the pool order and the held-out split (default 0)")
    pr.add_argument("--prepare-only", action="store_true", help="write the inputs and plan, train nothing")
    pr.set_defaults(func=cmd_probe)

    vm = sub.add_parser(
        "validate-mix", help="train proxy models on the chosen mix and on baselines at equal tokens; test-split loss",
        description="Arms at equal bytes and the same seeds: the mix (MIX = mix.json of `tierlake select --laws`), the "
                    "natural proportions of the curated corpus, a uniform mix over the eligible pools, the best single "
                    "pool, random eligible documents of the mix's unique size. Reports bits per byte on the benchmarks' "
                    "test splits (--evaluate of `tierlake probe`), each arm's spread over seeds, and the compute "
                    "multiplier: how many more bytes the natural mix needs to reach the mix's loss.")
    vm.add_argument("probe_dir", help="the `tierlake probe` folder (pools, baselines and test splits)")
    vm.add_argument("mix", help="mix.json of `tierlake select --laws`")
    vm.add_argument("output", help="result JSON to write")
    vm.add_argument("--budget", type=float, help="bytes per arm (default: the mix's budget in bytes)")
    vm.add_argument("--recipe", default="base", help="proxy size (default base; tiny for a CPU check)")
    vm.add_argument("--seeds", default="0,1,2", help="seeds, the same for every arm (default 0,1,2)")
    vm.add_argument("--multipliers", default="1.5,2,3,4", help="natural-mix budgets for the compute multiplier")
    vm.add_argument("--max-epochs", type=float, default=4.0, help="cap of the uniform arm's passes (default 4)")
    vm.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    vm.set_defaults(func=cmd_validate_mix)

    tq = sub.add_parser("train-quality", help="train the quality classifier from positive and negative examples",
                        description="Hashed word 1-2-grams + logistic regression; reports the cross-validated held-out "
                                    "ROC-AUC and saves model.json + weights.npz (no pickle).")
    tq.add_argument("output", help="model folder to write")
    tq.add_argument("--positive", nargs="+", required=True, help="JSONL files of good examples (field text)")
    tq.add_argument("--negative", nargs="+", required=True, help="JSONL files of poor examples (field text)")
    model_option(tq, "--folds", QualityModelParams, "folds", "cross-validation folds")
    model_option(tq, "--C", QualityModelParams, "C", "inverse regularization strength")
    model_option(tq, "--seed", QualityModelParams, "seed", "seed of the folds")
    tq.set_defaults(func=cmd_train_quality)

    ig = sub.add_parser("ingest", help="read one input into tierlake's document schema (quarantining bad records)",
                        description="JSONL (.gz/.zst/.bz2), Parquet or CSV, local or s3://. Writes documents/, quarantine/ "
                                    "(file, line and reason of every unreadable record) and stats.json.")
    ig.add_argument("input", help="file or folder")
    ig.add_argument("output", help="output folder")
    ig.add_argument("--text-column", default="text")
    ig.add_argument("--id-column", **ID_COLUMN_OPTION)
    ig.add_argument("--master", help="Spark master URL (default local[*])")
    ig.add_argument("--resume", **RESUME_OPTION)
    ig.set_defaults(func=cmd_ingest)
    rp = sub.add_parser("report", help="write RUN_DIR/report.html: a self-contained HTML report with plots",
                        description="Funnel of documents per stage, tiers by source, duplicate cluster sizes, quality and "
                                    "BETR score histograms, the containment graph, the chosen mix and its QQT curves. "
                                    "No scripts, no CDN: open it anywhere. Every `tierlake run` writes it too.")
    rp.add_argument("run_dir", help="output folder of a `tierlake run`")
    rp.set_defaults(func=cmd_report)
    ins = sub.add_parser(
        "inspect", help="print documents of a finished run: by tier, reason or source, sampled or sorted by a score",
        description="Reads RUN_DIR's tiered documents (only the columns and Parquet row groups it needs) and prints "
                    "the documents matching every filter given, each with the signals that decided its tier: quality "
                    "score, BETR score and the heuristic rule that failed with its value against its threshold. "
                    "Without --sort the documents are a sample drawn with the run's seed (the same every time).",
        epilog="examples:\n  tierlake inspect out --list-reasons\n  tierlake inspect out --tier L2 --n 5\n"
               "  tierlake inspect out --reason near_duplicate\n  tierlake inspect out --reason gopher_short_doc --source webcrawl\n"
               "  tierlake inspect out --sort betr_score --n 20 --json | jq .id",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ins.add_argument("run_dir", help="output folder of a `tierlake run` (or `tierlake tier`)")
    ins.add_argument("--tier", help="only this tier (L0..L4)")
    ins.add_argument("--reason", help="only documents with this reason: a filter rule (gopher_short_doc), exact_duplicate, "
                                      "near_duplicate, contaminated, a tier reason (quality_score, l4: qa no_agreement) or a "
                                      "quarantine reason (malformed_json); --list-reasons shows those present")
    ins.add_argument("--source", help="only this source")
    ins.add_argument("--sort", choices=["betr_score", "quality_score", "token_count"], help="highest first instead of a sample")
    ins.add_argument("--ascending", action="store_true", help="with --sort: lowest first")
    ins.add_argument("--n", type=int, help="how many documents (default 10)")
    ins.add_argument("--seed", type=int, help="sampling seed (default: the run's seed)")
    ins.add_argument("--chars", type=int, help="cut texts to this many characters (default 600)")
    ins.add_argument("--full", action="store_true", help="whole texts")
    ins.add_argument("--json", action="store_true", help="one JSON object per document (for scripts)")
    ins.add_argument("--list-reasons", action="store_true", help="list the tiers and reasons present, with counts")
    ins.add_argument("--no-pager", action="store_true", help="print without paging (paging is used only on a terminal)")
    ins.set_defaults(func=cmd_inspect)
    pk = sub.add_parser("package", help="zip tierlake's code for spark-submit --py-files",
                        description="Writes a reproducible zip of connectors/, curation/, tiers/ and flows/. Native "
                                    "dependencies must be installed on the cluster's Python or shipped as a packed "
                                    "environment (docs/operations.md).")
    pk.add_argument("--output", help="zip path (default dist/tierlake-pyfiles.zip)")
    pk.set_defaults(func=cmd_package)
    ra = sub.add_parser("run-app", help=argparse.SUPPRESS)  # what `spark.mode: submit` runs inside spark-submit
    ra.add_argument("recipe")
    ra.add_argument("--base-dir")
    ra.add_argument("--overwrite", action="store_true")
    ra.add_argument("--master")
    ra.set_defaults(func=cmd_run_app)

    val = sub.add_parser("validate", help="check a recipe without running it")
    val.add_argument("recipe")
    val.add_argument("--base-dir")
    val.set_defaults(func=cmd_validate)
    for command in sub.choices.values():  # `tierlake dedup ... --quiet` works as well as `tierlake --quiet dedup ...`
        if not any("--quiet" in a.option_strings for a in command._actions):
            command.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS,
                                 help="print only errors (for scheduled runs)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    for i, word in enumerate(argv):  # `tierlake containment plan|restore ...` -> containment-plan|restore
        if word == "containment" and i + 1 < len(argv) and argv[i + 1] in ("plan", "restore"):
            argv[i:i + 2] = [f"containment-{argv[i + 1]}"]
            break
        if word == "select" and i + 1 < len(argv) and argv[i + 1] == "qqt":
            argv[i:i + 2] = ["select-qqt"]
            break
        if not word.startswith("-"):
            break
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    for name in ("quiet",):
        setattr(args, name, getattr(args, name, False))
    _quiet_third_parties(args.quiet)
    if args.quiet:
        os.environ["TIERLAKE_QUIET"] = "1"
    from connectors.filesystem import InputError, list_files
    from flows.errors import RecipeError

    try:
        for name in ("input", "lake"):  # a missing input is reported before the JVM starts
            if isinstance(getattr(args, name, None), str):
                list_files(getattr(args, name))
        return args.func(args)
    except (RecipeError, InputError) as exc:
        print(f"tierlake: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tierlake: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # Spark failures arrive as Py4J/Spark exceptions with JVM stack traces
        from connectors.shards import UploadError

        if isinstance(exc, UploadError):
            print(f"tierlake: {exc}", file=sys.stderr)
            return 5
        if _no_space_left(exc):
            where = getattr(args, "output", None) or "the output"
            print(f"tierlake: no space left on the device holding {where}. Nothing that looks finished was written "
                  "(stats.json and manifest.json come last); free space and run the same command again "
                  "(`tierlake run` and the per-stage commands with --resume keep the stages already done).", file=sys.stderr)
            return 4
        if "OutOfMemoryError" in str(exc):
            print("tierlake: Spark ran out of memory (java.lang.OutOfMemoryError). Give it more: "
                  "--driver-memory 8g for `tierlake dedup`, or spark.driver_memory / spark.conf in the recipe "
                  "(spark.executor.memory on a cluster).", file=sys.stderr)
            return 3
        raise


if __name__ == "__main__":
    sys.exit(main())
