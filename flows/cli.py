"""The ``tierlake`` command line. Each subcommand's --help explains it; user mistakes print a
one-paragraph error and exit 2 (no traceback)."""

from __future__ import annotations

import json
import os
import sys
import time
from types import SimpleNamespace

import click

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


def _bad_options(exc) -> Exception:
    """A pydantic ValidationError of command-line options as a one-line user error."""
    from flows.errors import RecipeError

    return RecipeError("; ".join(f"{'.'.join(map(str, e['loc'])) or 'options'}: {e['msg']}" for e in exc.errors()))


def cmd_run(args) -> int:
    from connectors.filesystem import list_files
    from connectors.sources import check_source
    from flows.curate import curate
    from flows.errors import RecipeError
    from flows.recipe import load_recipe

    recipe = load_recipe(args.recipe, args.base_dir)  # fail fast, before Prefect or Spark start
    for src in recipe.sources:
        list_files(src.path)  # a missing or unreadable input is an InputError naming it, not a flow failure
        check_source(src)  # an unusable input (no records, not JSON, no text column): one line, no flow-run traceback
    started = time.time()
    if args.engine == "local" and args.master:
        raise RecipeError("--master is a Spark option; --engine local runs every stage in this process")
    path = curate(recipe_path=os.path.abspath(args.recipe), base_dir=args.base_dir, overwrite=args.overwrite, master=args.master, engine=args.engine)
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
    stats = run_ingest(
        args.input, args.output, args.text_column, args.id_column, spark_settings=SparkSettings(master=args.master or "local[*]"), resume=args.resume
    )
    if not args.quiet:
        print(
            f"ingest: {stats['documents_in']} records -> {stats['documents']} documents, quarantined "
            f"{stats['quarantined'] or 0} ({time.time() - started:.1f} s)"
        )
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
        given = {
            "tier": args.tier,
            "reason": args.reason,
            "source": args.source,
            "sort": args.sort,
            "ascending": args.ascending,
            "n": args.n,
            "seed": args.seed,
            "text_chars": args.chars,
        }
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
        keep = KeepPolicy(
            rule={"smallest-id": "smallest_id", "longest": "longest", "score": "highest_score"}.get(rule, rule), score_column=column or None
        )
        near = NearDedupParams(
            threshold=args.threshold,
            num_perm=args.num_perm,
            ngram=args.ngram,
            unit=args.unit,
            bands=args.bands,
            rows=args.rows,
            verify=args.verify,
            keep=keep,
            seed=args.seed,
        )
        exact = ExactDedupParams(keep=keep)
    except ValidationError as exc:
        raise _bad_options(exc) from None
    _check_engine_options(args)
    settings = SparkSettings(master=args.master or "local[*]", driver_memory=args.driver_memory)
    started = time.time()
    stats = run_dedup(
        args.input,
        args.output,
        exact,
        near,
        text_column=args.text_column,
        id_column=args.id_column,
        index_dir=args.index,
        spark_settings=settings,
        engine=args.engine,
        threads=args.threads,
        resume=args.resume,
    )
    if not args.quiet:
        near_d = stats["stages"][2]["details"]
        print(
            f"dedup: {stats['documents_in']} documents in, {stats['kept']} kept, removed {stats['removed']}, "
            f"quarantined {stats['quarantined']} ({time.time() - started:.1f} s)"
        )
        if near_d:
            print(
                f"  LSH {near_d.get('bands')}x{near_d.get('rows')}, candidate edges {near_d.get('candidate_edges')}, "
                f"dropped by verification {near_d.get('edges_dropped_by_verification')}"
            )
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

    _check_engine_options(args)
    policy = _policy(args)
    exact, near = load_dedup_params(args.recipe) if args.recipe else (None, None)  # a recipe's dedup, not the defaults
    started = time.time()
    stats = run_tier(
        args.input,
        args.output,
        policy,
        text_column=args.text_column,
        id_column=args.id_column,
        dedup=args.dedup,
        spark_settings=SparkSettings(master=args.master or "local[*]", driver_memory=args.driver_memory),
        exact_params=exact,
        near_params=near,
        resume=args.resume,
        engine=args.engine,
        threads=args.threads,
    )
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

    _check_engine_options(args)
    try:
        params = ScoreParams(
            targets=[os.path.abspath(t) if "://" not in t else t for t in args.targets],
            decontaminate=[os.path.abspath(t) if "://" not in t else t for t in (args.decontaminate or [])],
            sample=args.sample,
            top_p=args.top_p,
            balance=args.balance,
            embedder=args.embedder,
            mode=args.mode,
            seed=args.seed,
            ngram=args.ngram,
        )
        if args.classifier_features:
            params.classifier = params.classifier.with_features(args.classifier_features, args.classifier_chars)
    except ValidationError as exc:
        raise _bad_options(exc) from None
    started = time.time()
    stats = run_score(
        args.input,
        args.output,
        params,
        text_column=args.text_column,
        id_column=args.id_column,
        spark_settings=SparkSettings(master=args.master or "local[*]", driver_memory=args.driver_memory),
        resume=args.resume,
        engine=args.engine,
        threads=args.threads,
    )
    if not args.quiet:
        ev = stats["evaluation"]
        print(
            f"score: {stats['scored']} documents scored ({time.time() - started:.1f} s), mode {ev['mode']}, embedder "
            f"{ev['embedder']}, {ev['targets']} target examples ({', '.join(ev['target_benchmarks'])})"
        )
        if ev.get("positives_by_benchmark"):
            taken = ", ".join(f"{name} {count}" for name, count in ev["positives_by_benchmark"].items())
            print(f"  sample positives by benchmark (balanced): {taken}")
        if "heldout_auc" in ev:
            print(
                f"  classifier vs direct ranks on {ev['heldout']} held-out sampled documents: ROC-AUC {ev['heldout_auc']:.3f}, "
                f"precision at top {100 * ev['top_p']:.0f}% {ev['heldout_precision_at_top_p']:.3f} (base rate {ev['heldout_base_rate']:.3f})"
            )
        if "crossfit_auc" in ev:
            print(
                f"  cross-fitted over all {ev['sample']} sampled documents ({ev['folds']} folds): ROC-AUC {ev['crossfit_auc']:.3f}, "
                f"precision at top {100 * ev['top_p']:.0f}% {ev['crossfit_precision_at_top_p']:.3f}"
            )
        print(f"  contaminated: {ev['contaminated']} documents share a {args.ngram}-word n-gram with {ev['decontamination_examples']} test examples")
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
        print(
            f"containment: {f['tables']} tables ({f['catalog']['cached']} from the catalog cache), "
            f"{f['ordered_pairs']:,} ordered pairs -> "
            + " -> ".join(f"{s['stage']} {s['pairs_left']:,}" for s in f["stages"])
            + f" ({f['seconds']:.1f} s)"
        )
        print(f"  {args.output}/edges.parquet  {args.output}/funnel.json  {args.output}/report.md")
    return 0


def cmd_containment_plan(args) -> int:
    from curation.table_deletion import apply_plan, make_plan
    from flows.containment_job import load_costs

    plan = make_plan(args.output, load_costs(args.costs))
    if not args.quiet:
        print(
            f"deletion plan ({plan['method']}): delete {len(plan['delete'])} of the contained tables, "
            f"freeing {plan.get('bytes_freed', 0):,} bytes, saving ${plan['savings_usd_month']:.6g}/month "
            f"({plan['candidate_edges']} candidate edges within latency bounds)"
        )
        for d in plan["delete"]:
            print(f"  {d['table']}  <- rebuild from {d['parent']} ({d['rebuild_seconds']} s)")
        print(f"  {args.output}/plan.json")
    if args.apply:
        if not args.trash:
            from flows.errors import RecipeError

            raise RecipeError("--apply needs --trash DIR (where deleted tables go, with their recipes)")
        moved = apply_plan(args.output, args.trash)
        if not args.quiet:
            print(f"applied: moved {len(moved)} table(s) to {args.trash} (restore with `tierlake containment restore {args.trash}/<table>`)")
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
        raise RecipeError(
            f'{args.params}: expected {{"a": ..., "d": ..., "pools": [{{"name", "b", "tau", "size"}}, ...]}} and --budgets as numbers ({exc})'
        ) from None
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
            qqt.update(
                {
                    "a": fitted.get("a"),
                    "d": fitted.get("d", 0.1),
                    "pools": {p["name"]: {"b": p["b"], "tau": p["tau"]} for p in fitted.get("pools", [])},
                }
            )
        except FileNotFoundError:
            raise RecipeError(f"QQT params file not found: {args.qqt_params}") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise RecipeError(f'{args.qqt_params}: expected {{"a", "d", "pools": [{{"name": "source/tier", "b", "tau"}}]}} ({exc})') from None
    try:
        params = SelectParams(
            enabled=True,
            budget_tokens=args.budget,
            tiers=args.tiers.split(","),
            max_epochs=args.max_epochs,
            laws=os.path.abspath(args.laws) if args.laws else None,
            keep_top={"*": args.keep_top} if args.keep_top else {},
            alignment_weight=args.alignment_weight,
            targets=[os.path.abspath(t) if "://" not in t else t for t in (args.targets or [])],
            embedder=args.embedder,
            seed=args.seed,
            qqt=QQTSettings(**qqt),
        )
    except ValidationError as exc:
        raise _bad_options(exc) from None
    started = time.time()
    stats = run_select(args.run_dir, args.output, params, SparkSettings(master=args.master or "local[*]"))
    if not args.quiet:
        mix = stats["mix"]
        print(
            f"select: budget {args.budget:,.0f} tokens, {mix_basis(mix)}"
            + (f", OT to targets {mix['alignment_ot']:.4g} (uniform mix {mix['uniform_ot']:.4g})" if mix["alignment_ot"] is not None else "")
            + f" ({time.time() - started:.1f} s)"
        )
        for p in mix["pools"]:
            print(
                f"  {p['pool']:<24} share {p['share']:.3f}  epochs {p['epochs']:.2f}  selected {p['selected_tokens']:>10,} "
                f"tokens of {p['pool_tokens']:>10,.0f}"
            )
        print(f"  {args.output}/selection/documents/  {args.output}/selection/mix.json  {args.output}/stats.json")
    return 0


def cmd_probe(args) -> int:
    from pydantic import ValidationError

    from flows.probe_job import run_probe
    from tiers.probe import ProbeParams

    try:
        params = ProbeParams(
            **{
                k: v
                for k, v in {
                    "sizes": _numbers(args.sizes),
                    "repeats": _ints(args.repeats),
                    "mixtures": args.mixtures,
                    "mixture_tokens": args.mixture_tokens,
                    "mixture_alpha": args.mixture_alpha,
                    "recipe": args.recipe,
                    "pool_design": args.pool_design,
                    "curve_batch": args.curve_batch,
                    "curve_dropout": args.curve_dropout,
                    "curve_order": args.curve_order,
                    "seeds": _ints(args.seeds),
                    "device": args.device,
                    "mixture_seeds": _ints(args.mixture_seeds),
                    "eval_bytes": args.eval_bytes,
                    "seed": args.seed,
                    "min_pool_bytes": args.min_pool_bytes,
                }.items()
                if v is not None
            }
        )
    except (ValidationError, ValueError) as exc:
        raise _bad_options(exc) from None
    bars = _probe_progress(args.quiet)
    try:
        summary = run_probe(
            args.run_dir,
            args.output,
            args.targets or [],
            args.evaluate or [],
            params,
            prepare_only=args.prepare_only,
            progress=bars.probe,
            step_progress=bars.step,
        )
    except ValueError as exc:
        from flows.errors import RecipeError

        raise RecipeError(str(exc)) from None
    finally:
        bars.close()
    if args.quiet:
        return 0
    plan = summary["plan"]
    if summary.get("prepared"):
        print(
            f"probe: prepared {args.output} ({len(plan['pools'])} pools, {summary['probes']} probes planned); run the "
            f"grid with `python -m tiers.probe run {args.output} --device cuda` on a GPU machine, then "
            f"`tierlake probe {args.run_dir} {args.output}` here to fit"
        )
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
        result = validate_mix(
            args.probe_dir,
            mix,
            mix_budget(mix, args.budget),
            args.recipe,
            tuple(_ints(args.seeds) or ()),
            args.device,
            tuple(_numbers(args.multipliers) or ()),
            args.max_epochs,
            progress=(lambda line: None) if args.quiet else print,
        )
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
    model = train_quality_model(
        pos, neg, QualityModelParams(folds=args.folds, seed=args.seed, C=args.C), sources={"positive": args.positive, "negative": args.negative}
    )
    model.save(args.output)
    cv = model.meta["cross_validation"]
    if not args.quiet:
        print(
            f"quality model: {len(pos)} positive, {len(neg)} negative examples; held-out ROC-AUC "
            f"{cv['auc_mean']:.3f} +- {cv['auc_std']:.3f} over {cv['folds']} folds (pooled {cv['auc_pooled']:.3f})"
        )
        print(f"  saved to {args.output}/ (model.json + weights.npz; no pickle)")
    return 0


# --------------------------------------------------------------------------- command-line grammar


class ManyValues(click.Option):
    """An option taking one or more values up to the next option, ``--targets a.jsonl b.jsonl``
    (argparse's ``nargs="+"``); repeating the option adds more. The handler gets a list, or None
    when the option is not given."""

    def __init__(self, *args, **kwargs):
        kwargs["multiple"] = True
        super().__init__(*args, **kwargs)

    def add_to_parser(self, parser, ctx) -> None:
        super().add_to_parser(parser, ctx)
        for flag in self.opts:
            option = parser._long_opt.get(flag) or parser._short_opt.get(flag)
            take_one = option.process

            def take_all(value, state, take_one=take_one):
                take_one(value, state)
                while state.rargs and not state.rargs[0].startswith("-"):
                    take_one(state.rargs.pop(0), state)

            option.process = take_all


class DefaultGroup(click.Group):
    """A command with subcommands that runs ``default`` when the first word is not one of them:
    ``tierlake containment LAKE OUT`` is ``tierlake containment find LAKE OUT``."""

    def __init__(self, *args, default: str, **kwargs):
        kwargs.setdefault("context_settings", {})
        kwargs["context_settings"].update(ignore_unknown_options=True, allow_interspersed_args=False)
        super().__init__(*args, **kwargs)
        self.default = default

    def resolve_command(self, ctx, args):
        if args and args[0] in self.commands:
            return super().resolve_command(ctx, args)
        return self.default, self.commands[self.default], args

    def format_usage(self, ctx, formatter) -> None:
        formatter.write_usage(ctx.command_path, f"[{self.default}] ARGS... | COMMAND ARGS...")


def option(*decls: str, help: str, **kwargs) -> click.Option:
    """A plain option; its default, when it has one, is shown in the help."""
    kwargs.setdefault("show_default", "default" in kwargs and kwargs["default"] is not None and not kwargs.get("is_flag"))
    return click.Option(list(decls), help=help, **kwargs)


def model_option(flag: str, model: type, field: str, help: str | None = None, **kwargs) -> click.Option:
    """An option whose default comes from the parameters model's field (its help from the field's
    description unless given): the CLI, recipes and flows share one default."""
    info = model.model_fields[field]  # type: ignore[attr-defined]
    default = info.get_default(call_default_factory=True)
    decls = [f"{flag}/--no-{flag[2:]}" if isinstance(default, bool) else flag, field]
    shown = ("on" if default else "off") if isinstance(default, bool) else default
    return click.Option(decls, default=default, help=f"{help or info.description or field.replace('_', ' ')} (default {shown})", **kwargs)


def choice(*values: str) -> click.Choice:
    return click.Choice(values)


def input_argument() -> click.Argument:
    return click.Argument(["input"])


def output_argument() -> click.Argument:
    return click.Argument(["output"])


def master_option(what: str = "Spark master URL (default local[*])") -> click.Option:
    return option("--master", help=what)


def text_column_option() -> click.Option:
    return option("--text-column", default="text", help="column holding the text")


def id_column_option() -> click.Option:
    return option(
        "--id-column",
        type=_id_column,
        default="id",
        metavar="COLUMN",
        show_default=False,
        help="column holding each document's unique id (default id: used when the input has it, else a hash of source + text); none: always hash ids",
    )


def resume_option() -> click.Option:
    return option(
        "--resume",
        is_flag=True,
        help="keep stage checkpoints in OUTPUT/_checkpoints: a re-run after a crash "
        "redoes only the unfinished stages, and a finished run with the same "
        "input and options is kept as it is",
    )


def engine_options(speed: str) -> list[click.Option]:
    """``--engine`` and ``--threads`` of a one-input job (dedup, score, tier)."""
    return [
        option(
            "--engine",
            type=choice("spark", "local"),
            default="spark",
            help="spark: a Spark job, local or on a cluster (--master); local: one process on this machine without "
            f"a JVM, the same results and outputs, for inputs that fit in memory; {speed}",
        ),
        option("--threads", type=int, help="threads of --engine local (default: the cores this process may use)"),
    ]


def _check_engine_options(args) -> None:
    from flows.errors import RecipeError

    if args.engine == "local" and args.master:
        raise RecipeError("--master is a Spark option; --engine local runs in this process (use --threads)")
    if args.engine == "spark" and args.threads:
        raise RecipeError("--threads is for --engine local; Spark's parallelism comes from --master (local[N] or a cluster)")
    if args.threads is not None and args.threads < 1:
        raise RecipeError("--threads must be at least 1")


def driver_memory_option() -> click.Option:
    return option("--driver-memory", default="4g", help="Spark driver heap, e.g. 8g (in local mode it also holds the executors' work)")


def quiet_option() -> click.Option:
    """``--quiet``, accepted before the command (``tierlake --quiet dedup ...``) and after it."""
    return option("--quiet", is_flag=True, help="print only errors (for scheduled runs)")


INPUT_HELP = "INPUT: a file or folder, JSONL (.gz/.zst/.bz2), Parquet or CSV, local or s3://. OUTPUT: the output folder."


def _call(handler, options: dict, defaults: dict | None = None) -> int:
    """Run a command's handler on its options (a namespace, as the handlers read them)."""
    root = click.get_current_context().find_root()
    options = {**(defaults or {}), **options}
    options["quiet"] = bool(options.get("quiet") or root.params.get("quiet"))
    for name, value in list(options.items()):
        if isinstance(value, tuple):  # a ManyValues option: a list, or None when not given
            options[name] = list(value) or None
    args = SimpleNamespace(**options)
    _quiet_third_parties(args.quiet)
    if args.quiet:
        os.environ["TIERLAKE_QUIET"] = "1"
    from connectors.filesystem import list_files

    for name in ("input", "lake"):  # a missing input is reported before the JVM starts
        if isinstance(getattr(args, name, None), str):
            list_files(getattr(args, name))
    return handler(args)


def command(
    parent: click.Group,
    name: str,
    handler,
    params: list[click.Parameter],
    summary: str,
    description: str | None = None,
    epilog: str | None = None,
    defaults: dict | None = None,
    hidden: bool = False,
) -> click.Command:
    """A leaf command of ``parent``: its parameters become the options namespace of ``handler``."""

    def callback(**options):
        return _call(handler, options, defaults)

    cmd = click.Command(
        name,
        params=[*params, quiet_option()],
        callback=callback,
        short_help=summary,
        help=description or summary,
        epilog=epilog,
        hidden=hidden,
    )
    parent.add_command(cmd)
    return cmd


def _root(ctx: click.Context, quiet: bool) -> None:
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def build_cli() -> click.Group:
    """The ``tierlake`` command and its subcommands."""
    from curation.params import ContainmentParams, NearDedupParams, QualityModelParams, ScoreParams
    from tiers.params import SelectParams

    cli = click.Group(
        "tierlake",
        callback=click.pass_context(_root),
        invoke_without_command=True,
        params=[quiet_option()],
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
        help="Curate raw corpora into training mixes: ingest, dedup, tiers, scoring and selection on Spark, "
        "orchestrated by Prefect, with a manifest for every run.",
        epilog="\b\n" + EXAMPLES,
    )

    command(
        cli,
        "run",
        cmd_run,
        [
            click.Argument(["recipe"]),
            master_option("Spark master URL, overriding the recipe (e.g. local[2], spark://host:7077)"),
            option(
                "--engine",
                type=choice("spark", "local"),
                help="overrides the recipe's engine: spark (every stage a Spark job) or local (every stage in this "
                "process on Arrow tables, no JVM, the same documents, tiers and mix; for inputs that fit in memory)",
            ),
            option("--overwrite", is_flag=True, help="replace an earlier run in the output folder"),
            option("--base-dir", help="resolve relative recipe paths against this folder (default: the recipe's folder)"),
        ],
        "run a YAML recipe through the Prefect flow",
        "Run every stage of a recipe (RECIPE: a YAML file, see examples/) through the `curate` Prefect flow "
        "(ephemeral Prefect unless PREFECT_API_URL points at a server) and write the manifest last.",
    )

    command(
        cli,
        "demo",
        cmd_demo,
        [
            option("--workdir", default="work/demo", help="where the lake and the outputs go"),
            option("--docs", type=int, default=20_000, help="base documents to generate"),
            option("--seed", type=int, default=7, help="generator seed"),
            master_option("Spark master URL (default: local[*])"),
        ],
        "generate the demo lake and run the full demo recipe",
        "Generate a seeded demo lake (documents, duplicates, malformed records, tables, targets, ground truth) if "
        "absent, then run examples/demo.yaml on it with local Spark.",
    )

    command(
        cli,
        "dedup",
        cmd_dedup,
        [
            input_argument(),
            output_argument(),
            model_option("--threshold", NearDedupParams, "threshold", "Jaccard threshold for near duplicates"),
            model_option("--num-perm", NearDedupParams, "num_perm", "MinHash permutations"),
            model_option("--ngram", NearDedupParams, "ngram", "shingle size in words, or characters with --unit char"),
            model_option("--unit", NearDedupParams, "unit", "shingle unit", type=choice("word", "char")),
            option(
                "--bands",
                type=int,
                help="LSH bands (with --rows); default: datasketch's search from threshold and "
                "num-perm, weighing missed duplicates 0.95 when --verify is on (14x8 for 0.8 and "
                "112), 0.5 with --no-verify (9x12)",
            ),
            option("--rows", type=int, help="rows per band (with --bands)"),
            text_column_option(),
            id_column_option(),
            option("--keep", default="smallest-id", help="which document of a cluster stays: smallest-id, longest, or score:COLUMN (highest value)"),
            model_option("--verify", NearDedupParams, "verify", "check candidate pairs by exact Jaccard before clustering"),
            option("--index", help="folder of a dedup index: dedup against earlier runs saved there, then add this run"),
            model_option("--seed", NearDedupParams, "seed", "MinHash seed"),
            *engine_options("peak memory about 5x the input's text; 3-14x faster than spark on one machine (docs/dedup.md)"),
            master_option(),
            driver_memory_option(),
            resume_option(),
        ],
        "remove exact and near duplicates from one input (MinHash LSH; on Spark or in one process)",
        "Exact dedup on normalized text (NFKC, lower-case, whitespace collapsed), then near-dup: word n-gram "
        "shingles, MinHash (datasketch's affine32 scheme), LSH bands, star edges, optional exact-Jaccard "
        "verification, connected components, one document kept per cluster.\n\n" + INPUT_HELP,
        "\b\noutputs: OUTPUT/kept/ (Parquet, all input columns), OUTPUT/removed/ (id, duplicate_of = the id kept,\n"
        "  kind = exact|near, cluster_size, reason), OUTPUT/stats.json (written last)\n"
        "example: tierlake dedup data/crawl/ out/crawl-dedup --threshold 0.8 --index out/dedup-index",
    )

    command(
        cli,
        "tier",
        cmd_tier,
        [
            input_argument(),
            output_argument(),
            option("--recipe", help="YAML tier policy, or a recipe whose stages.tier (and stages.dedup) are used"),
            option("--quality-model", help="folder of a model from `tierlake train-quality` (overrides the recipe)"),
            ManyValues(["--targets"], help="JSONL target examples for target similarity (overrides the recipe)"),
            text_column_option(),
            id_column_option(),
            option("--dedup/--no-dedup", default=True, show_default=False, help="exact and near dedup first (default on)"),
            *engine_options("the tier stage ran 1.7-2.3x faster than on Spark (docs/benchmarks.md, 'Curate: per-stage throughput')"),
            master_option(),
            driver_memory_option(),
            resume_option(),
        ],
        "assign every document a tier L0-L4 with the reason it stopped there",
        "Ingest, exact and near dedup, then per-document signals (Gopher quality and repetition, C4, FineWeb, "
        "fastText language id, quality model score, target similarity) and tiers: L0 raw, L1 filtered, L2 "
        "quality-selected, L3 stricter quality and target-aligned, L4 holding verified knowledge units.\n\n" + INPUT_HELP,
        "\b\noutputs: OUTPUT/documents/tier=L0..L4/ (every document once, with tier_reasons), OUTPUT/signals/,\n"
        "  OUTPUT/units/ (verified L4 units with provenance), OUTPUT/units_rejected/, OUTPUT/stats.json (last)\n"
        "example: tierlake tier data/crawl/ out/tiers --recipe examples/tiers.yaml\n"
        "without --recipe or --quality-model every document stops at L1 at most (no quality model)",
    )

    command(
        cli,
        "retier",
        cmd_retier,
        [
            click.Argument(["run_dir"]),
            output_argument(),
            option("--recipe", help="YAML tier policy"),
            master_option(),
        ],
        "re-assign tiers of an earlier `tierlake tier` run with a new policy, reusing its signals",
        "Reads RUN_DIR/signals and RUN_DIR/documents (RUN_DIR: the output folder of `tierlake tier`), applies the "
        "policy's thresholds to the stored signals (no text processing except L4 unit extraction) and writes a new "
        "run to OUTPUT.",
        defaults={"quality_model": None, "targets": None},
    )

    command(
        cli,
        "score",
        cmd_score,
        [
            input_argument(),
            output_argument(),
            ManyValues(
                ["--targets"],
                required=True,
                help="benchmark train/dev files or folders: text JSONL, GSM8K JSONL, MMLU CSV, llm-foundry or PIQA JSONL",
            ),
            ManyValues(["--decontaminate"], help="benchmark test files or folders to check documents against"),
            model_option("--sample", ScoreParams, "sample", "documents ranked directly and used to train the classifier"),
            model_option("--top-p", ScoreParams, "top_p", "fraction of the sample labelled positive"),
            model_option(
                "--balance",
                ScoreParams,
                "balance",
                "benchmarks: each target benchmark gets an equal share of the positives; none: top by best rank under any example",
                type=choice("benchmarks", "none"),
            ),
            model_option("--embedder", ScoreParams, "embedder", "static (WordLlama) or minilm (extra)", type=choice("static", "minilm")),
            model_option("--mode", ScoreParams, "mode", "sample + classifier, or direct: embed every document", type=choice("sample", "direct")),
            option(
                "--classifier-features",
                type=choice("ngrams", "ngrams_stripped", "embedding", "ngrams+embedding", "ngrams+kernel"),
                help="sample mode's classifier: ngrams (default); ngrams+kernel keeps the topic of one-subject targets "
                "instead of their test format (docs/scoring.md, 'BETR on topic')",
            ),
            option(
                "--classifier-chars",
                type=int,
                help="characters of each document the classifier reads (default: 1000 with ngrams+embedding or embedding; "
                "with ngrams+kernel, 2000 for its n-grams and 1000 for its embedding; else the whole text)",
            ),
            model_option("--ngram", ScoreParams, "ngram", "words in a decontamination n-gram"),
            model_option("--seed", ScoreParams, "seed", "seed of the sample and the classifier"),
            text_column_option(),
            id_column_option(),
            *engine_options("the score stage ran 1.7-2.0x faster than on Spark (docs/benchmarks.md, 'Curate: per-stage throughput')"),
            master_option(),
            driver_memory_option(),
            resume_option(),
        ],
        "BETR: score every document by similarity to target benchmark examples; flag contamination",
        "Benchmark-targeted ranking (arXiv 2507.12466): embed the targets and a sample of documents, rank the sample "
        "under every target example, label its top p% positive, train a light classifier and score the whole input "
        "with it on Spark (--mode sample), or embed every document (--mode direct). Documents sharing an N-word "
        "n-gram with a test split are flagged contaminated.\n\n" + INPUT_HELP,
        "\b\noutputs: OUTPUT/scores/ (id, betr_score, betr_rank_pct, contaminated, contamination_ngrams),\n"
        "  OUTPUT/sample.parquet, OUTPUT/model/, OUTPUT/stats.json (last)\n"
        "example: tierlake score data/ out/betr --targets bench/gsm8k/train.jsonl bench/mmlu/dev \\\n"
        "  --decontaminate bench/gsm8k/test.jsonl",
    )

    containment = DefaultGroup(
        "containment",
        default="find",
        short_help="find tables contained in other tables of a lake (R2D2 funnel); plan and restore their deletion",
        help="`tierlake containment LAKE OUTPUT` (or `containment find`) finds contained tables; "
        "`containment plan OUTPUT` decides which to delete; `containment restore ENTRY` "
        "rebuilds a deleted one.",
    )
    cli.add_command(containment)
    command(
        containment,
        "find",
        cmd_containment,
        [
            click.Argument(["lake"]),
            output_argument(),
            model_option("--min-ratio", ContainmentParams, "min_ratio", "share of the child's distinct rows found in the parent"),
            model_option("--sample", ContainmentParams, "sample", "child rows probed per pair in content pruning"),
            model_option("--seed", ContainmentParams, "seed", "seed of the content probe"),
        ],
        "find tables contained in other tables of a lake (the default: `tierlake containment LAKE OUTPUT`)",
        "Catalog the lake (LAKE: a root folder or s3:// URI; Parquet files and datasets, Hive partitions, CSV, Delta) "
        "from metadata, then schema containment graph -> min-max pruning -> content pruning -> exact verification "
        "(R2D2, arXiv 2312.13427).",
        "\b\noutputs: OUTPUT/edges.parquet (child, parent, ratio, child_rows, verified), OUTPUT/funnel.json,\n"
        "  OUTPUT/report.md, OUTPUT/catalog.json (cache: an unchanged lake is not re-read)",
    )
    command(
        containment,
        "plan",
        cmd_containment_plan,
        [
            output_argument(),
            option(
                "--costs",
                help="YAML: storage_usd_per_gb_month, compute_usd_per_hour, read_mb_per_s, "
                "default_accesses_per_month, accesses_csv, default_latency_seconds, latency_seconds",
            ),
            option("--apply", is_flag=True, help="move the planned tables to --trash (explicit, never by default)"),
            option("--trash", help="trash root for --apply"),
        ],
        "decide which contained tables to delete",
        "Integer program (scipy milp/HiGHS; greedy above max_exact_edges) over OUTPUT of `tierlake containment`: delete "
        "contained tables to save storage minus access cost, each rebuildable from a kept parent within its latency "
        "bound. --apply moves them to --trash with a recipe.",
    )
    command(
        containment,
        "restore",
        cmd_containment_restore,
        [click.Argument(["entry"])],
        "rebuild a deleted table from its parent",
        "Rebuild the table of ENTRY (TRASH/<table path>, written by `tierlake containment plan --apply`) from its parent.",
    )

    select = DefaultGroup(
        "select",
        default="mix",
        short_help="choose the training mix for a token budget and materialize it (also: `select qqt`)",
        help="`tierlake select RUN_DIR OUTPUT --budget N` (or `select mix`) chooses and writes the "
        "mix; `select qqt` prints the QQT frontier of fitted laws.",
    )
    cli.add_command(select)
    command(
        select,
        "mix",
        cmd_select,
        [
            click.Argument(["run_dir"]),
            output_argument(),
            option("--budget", type=float, required=True, help="training budget in tokens, e.g. 2e9"),
            option("--tiers", default="L1,L2,L3,L4", help="eligible tiers (L0 never)"),
            model_option("--max-epochs", SelectParams, "max_epochs", "maximum repetitions of any pool"),
            model_option(
                "--alignment-weight",
                SelectParams,
                "alignment_weight",
                "weight of the OT distance to --targets (0 = QQT alone; 0.05 = closing the uniform mix's distance is worth 5 accuracy points)",
            ),
            ManyValues(["--targets"], help="target example JSONL files (benchmark train/dev) for alignment"),
            option(
                "--qqt-params",
                help='fitted laws JSON {"a", "d", "pools": [{"name": "source/tier", "b", "tau"}]}; default: the T-MARS fit as a per-tier prior',
            ),
            option(
                "--laws",
                help="laws.json from `tierlake probe`: choose the mix that minimizes the fitted laws' predicted "
                "target loss (without it the mix follows priors, and says so)",
            ),
            option(
                "--keep-top",
                type=float,
                help="keep only this top fraction of every pool's tokens by betr_score (BETR's 'keep the top X%'; needs a run with the score stage)",
            ),
            option("--tau-convention", type=choice("scaled", "plain"), default="scaled", help="QQT's tau convention"),
            model_option("--embedder", SelectParams, "embedder", "embedder of the alignment term", type=choice("static", "minilm")),
            model_option("--seed", SelectParams, "seed", "seed of the embedding sample"),
            master_option(),
        ],
        "choose the training mix for a token budget and materialize it (the default: `tierlake select RUN_DIR OUTPUT`)",
        "Pools are (source, tier) of an earlier run's tiers (RUN_DIR: a curate run with the tier stage, or a `tierlake "
        "tier` output). The mix maximizes QQT-predicted accuracy (quality through each pool's utility, quantity "
        "through repetition decay; Goyal et al., CVPR 2024) minus --alignment-weight x the OT distance of the mix to "
        "target examples (projektor, Kang et al., NeurIPS 2023), with no pool repeated more than --max-epochs times; "
        "with --laws it minimizes the fitted laws' predicted target loss. Writes the selected rows, the mix and stats "
        "to OUTPUT.",
    )
    command(
        select,
        "qqt",
        cmd_select_qqt,
        [
            option("--params", required=True, help='JSON: {"a": .., "d": .., "pools": [{"name", "b", "tau", "size"}, ...]} best pool first'),
            option("--budgets", required=True, help="comma-separated samples seen, e.g. 32e6,128e6,640e6"),
            option(
                "--tau-convention",
                type=choice("scaled", "plain"),
                default="scaled",
                help="scaled (the reference code): each tau multiplied by the number of pools combined",
            ),
        ],
        "best top-k pool union per budget from fitted QQT laws",
        "Predict accuracy = 1 - error of every top-k union of pools (in quality order) at each budget of samples seen, "
        "with repetition decay b_j = b*0.5^(j/tau); prints JSON.",
    )

    command(
        cli,
        "probe",
        cmd_probe,
        [
            click.Argument(["run_dir"], required=False),
            output_argument(),
            ManyValues(["--targets"], help="benchmark dev/validation files or folders: the loss the laws predict"),
            ManyValues(["--evaluate"], help="benchmark test files for the final check (`tierlake validate-mix`)"),
            option("--sizes", help="unique bytes per pool probe, comma-separated (default 2.5e5,5e5,1e6,2e6)"),
            option("--repeats", help="passes over those bytes, comma-separated (default 1,2,4,8)"),
            option("--mixtures", type=int, help="random mixtures for projektor's predictor (default 40)"),
            option("--mixture-tokens", type=float, help="bytes per mixture probe (default 2e6)"),
            option(
                "--mixture-seeds",
                help="training seeds per mixture probe, comma-separated (default: the first of "
                "--seeds); the predictor is fitted on each mixture's mean loss",
            ),
            option(
                "--mixture-alpha",
                type=float,
                help="Dirichlet concentration of the mixtures (default 1; below 1 covers mixes dominated by one pool, where selection may go)",
            ),
            option("--recipe", help="proxy size: tiny (tests, CPU), small, base, large (default small)"),
            option(
                "--pool-design",
                type=choice("runs", "curves"),
                help="curves (default): one run per pool and size at a constant learning rate, scored as it passes each "
                "repetition level (QQT's learning curves); runs: a training run per pool, size and repetition level",
            ),
            option("--curve-batch", type=int, help="windows per step of the curve probes (default: the recipe's batch)"),
            option("--curve-dropout", type=float, help="dropout of the curve probes (default 0.1; 0 for none)"),
            option(
                "--curve-order",
                type=choice("hash", "score"),
                help="order of a pool's documents in the curve probes: hash (default: a seeded random order, so each unique "
                "size is a random sample of the pool, as QQT's law assumes) or score (best betr_score first, as selection takes them)",
            ),
            option("--seeds", help="training seeds per probe, comma-separated (default 0)"),
            option("--device", type=choice("auto", "cpu", "cuda"), help="where to train (default auto: CUDA when present)"),
            option("--min-pool-bytes", type=float, help="leave out pools smaller than this (default: the smallest size)"),
            option("--eval-bytes", type=int, help="target bytes scored per benchmark (default 1e6)"),
            option("--seed", type=int, help="seed of the mixture draws, the pool order and the held-out split (default 0)"),
            option("--prepare-only", is_flag=True, help="write the inputs and plan, train nothing"),
        ],
        "train proxy language models on a run's pools and fit the laws that selection uses",
        "For every pool (source/tier of the curate run RUN_DIR, which is not needed when OUTPUT is prepared) trains "
        "small byte-level proxy models from scratch at several unique-byte sizes and repetition levels, plus random "
        "mixtures of all pools, and scores each on held-out target text (bits per byte on the --targets "
        "dev/validation splits). Fits QQT laws per pool (a, b, tau, d; Goyal et al., CVPR 2024) with held-out checks "
        "and projektor's predictor on the mixtures (Kang et al., NeurIPS 2023). Writes OUTPUT/probes.parquet and "
        "OUTPUT/laws.json for `tierlake select --laws`. Resumable: probes already in OUTPUT are reused.",
    )

    command(
        cli,
        "validate-mix",
        cmd_validate_mix,
        [
            click.Argument(["probe_dir"]),
            click.Argument(["mix"]),
            output_argument(),
            option("--budget", type=float, help="bytes per arm (default: the mix's budget in bytes)"),
            option("--recipe", default="base", help="proxy size (tiny for a CPU check)"),
            option("--seeds", default="0,1,2", help="seeds, the same for every arm"),
            option("--multipliers", default="1.5,2,3,4", help="natural-mix budgets for the compute multiplier"),
            option("--max-epochs", type=float, default=4.0, help="cap of the uniform arm's passes"),
            option("--device", type=choice("auto", "cpu", "cuda"), default="auto", help="where to train"),
        ],
        "train proxy models on the chosen mix and on baselines at equal tokens; test-split loss",
        "Arms at equal bytes and the same seeds: the mix (MIX = mix.json of `tierlake select --laws`), the natural "
        "proportions of the curated corpus, a uniform mix over the eligible pools, the best single pool, random "
        "eligible documents of the mix's unique size; PROBE_DIR is the `tierlake probe` folder (pools, baselines and "
        "test splits). Reports bits per byte on the benchmarks' test splits (--evaluate of `tierlake probe`), each "
        "arm's spread over seeds, and the compute multiplier: how many more bytes the natural mix needs to reach the "
        "mix's loss. OUTPUT: the result JSON to write.",
    )

    command(
        cli,
        "train-quality",
        cmd_train_quality,
        [
            output_argument(),
            ManyValues(["--positive"], required=True, help="JSONL files of good examples (field text)"),
            ManyValues(["--negative"], required=True, help="JSONL files of poor examples (field text)"),
            model_option("--folds", QualityModelParams, "folds", "cross-validation folds"),
            model_option("--C", QualityModelParams, "C", "inverse regularization strength"),
            model_option("--seed", QualityModelParams, "seed", "seed of the folds"),
        ],
        "train the quality classifier from positive and negative examples",
        "Hashed word 1-2-grams + logistic regression; reports the cross-validated held-out ROC-AUC and saves "
        "OUTPUT/model.json + weights.npz (no pickle).",
    )

    command(
        cli,
        "ingest",
        cmd_ingest,
        [
            input_argument(),
            output_argument(),
            text_column_option(),
            id_column_option(),
            master_option(),
            resume_option(),
        ],
        "read one input into tierlake's document schema (quarantining bad records)",
        "JSONL (.gz/.zst/.bz2), Parquet or CSV, local or s3://. Writes documents/, quarantine/ (file, line and reason "
        "of every unreadable record) and stats.json.",
    )

    command(
        cli,
        "report",
        cmd_report,
        [click.Argument(["run_dir"])],
        "write RUN_DIR/report.html: a self-contained HTML report with plots",
        "Funnel of documents per stage, tiers by source, duplicate cluster sizes, quality and BETR score histograms, "
        "the containment graph, the chosen mix and its QQT curves, of the `tierlake run` output RUN_DIR. No "
        "scripts, no CDN: open it anywhere. Every `tierlake run` writes it too.",
    )

    command(
        cli,
        "inspect",
        cmd_inspect,
        [
            click.Argument(["run_dir"]),
            option("--tier", help="only this tier (L0..L4)"),
            option(
                "--reason",
                help="only documents with this reason: a filter rule (gopher_short_doc), exact_duplicate, "
                "near_duplicate, contaminated, a tier reason (quality_score, l4: qa no_agreement) or a "
                "quarantine reason (malformed_json); --list-reasons shows those present",
            ),
            option("--source", help="only this source"),
            option("--sort", type=choice("betr_score", "quality_score", "token_count"), help="highest first instead of a sample"),
            option("--ascending", is_flag=True, help="with --sort: lowest first"),
            option("--n", type=int, help="how many documents (default 10)"),
            option("--seed", type=int, help="sampling seed (default: the run's seed)"),
            option("--chars", type=int, help="cut texts to this many characters (default 600)"),
            option("--full", is_flag=True, help="whole texts"),
            option("--json", is_flag=True, help="one JSON object per document (for scripts)"),
            option("--list-reasons", is_flag=True, help="list the tiers and reasons present, with counts"),
            option("--no-pager", is_flag=True, help="print without paging (paging is used only on a terminal)"),
        ],
        "print documents of a finished run: by tier, reason or source, sampled or sorted by a score",
        "Reads the tiered documents of RUN_DIR (a `tierlake run` or `tierlake tier` output; only the columns and "
        "Parquet row groups it needs) and prints the documents matching every filter given, each with the signals "
        "that decided its tier: quality score, BETR score and the heuristic rule that failed with its value against "
        "its threshold. Without --sort the documents are a sample drawn with the run's seed (the same every time).",
        "\b\nexamples:\n  tierlake inspect out --list-reasons\n  tierlake inspect out --tier L2 --n 5\n"
        "  tierlake inspect out --reason near_duplicate\n  tierlake inspect out --reason gopher_short_doc --source webcrawl\n"
        "  tierlake inspect out --sort betr_score --n 20 --json | jq .id",
    )

    command(
        cli,
        "package",
        cmd_package,
        [
            option("--output", help="zip path (default dist/tierlake-pyfiles.zip)"),
        ],
        "zip tierlake's code for spark-submit --py-files",
        "Writes a reproducible zip of connectors/, curation/, tiers/ and flows/. Native dependencies must be installed "
        "on the cluster's Python or shipped as a packed environment (docs/operations.md).",
    )

    command(
        cli,
        "run-app",
        cmd_run_app,
        [  # what `spark.mode: submit` runs inside spark-submit
            click.Argument(["recipe"]),
            option("--base-dir", help="recipe base folder"),
            option("--overwrite", is_flag=True, help="replace an earlier run"),
            master_option(),
        ],
        "run a recipe inside a spark-submit application",
        hidden=True,
    )

    command(
        cli,
        "validate",
        cmd_validate,
        [
            click.Argument(["recipe"]),
            option("--base-dir", help="resolve relative recipe paths against this folder"),
        ],
        "check a recipe without running it",
    )
    return cli


def parse(argv: list[str]) -> tuple[str, SimpleNamespace]:
    """(command path, options) that ``argv`` selects, without running anything: what a handler
    would receive (``--quiet`` given before or after the command included)."""
    ctx = build_cli().make_context("tierlake", list(argv))
    quiet = ctx.params.get("quiet", False)
    while isinstance(ctx.command, click.Group):
        name, cmd, rest = ctx.command.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        assert cmd is not None and name is not None
        ctx = cmd.make_context(name, rest, parent=ctx)
    options = dict(ctx.params)
    options["quiet"] = bool(options.get("quiet") or quiet)
    return ctx.command_path.removeprefix("tierlake "), SimpleNamespace(**options)


def main(argv: list[str] | None = None) -> int:
    """The ``tierlake`` entry point: runs the command and maps every way it can end to an exit code
    (0 done, 2 a user mistake, 3 out of memory, 4 no space left, 5 upload failed, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    from connectors.filesystem import InputError
    from flows.errors import RecipeError, is_no_space_left, is_out_of_memory

    try:
        return int(build_cli().main(args=argv, prog_name="tierlake", standalone_mode=False) or 0)
    except click.ClickException as exc:  # a usage mistake: unknown option, missing argument, bad choice
        exc.show()
        return exc.exit_code
    except (RecipeError, InputError) as exc:
        print(f"tierlake: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, click.Abort):
        print("tierlake: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # Spark failures arrive as Py4J/Spark exceptions with JVM stack traces
        from connectors.shards import UploadError

        if isinstance(exc, UploadError):
            print(f"tierlake: {exc}", file=sys.stderr)
            return 5
        if is_no_space_left(exc):
            print(
                "tierlake: no space left on the device holding the output. Nothing that looks finished was written "
                "(stats.json and manifest.json come last); free space and run the same command again "
                "(`tierlake run` and the per-stage commands with --resume keep the stages already done).",
                file=sys.stderr,
            )
            return 4
        if is_out_of_memory(exc):
            print(
                "tierlake: Spark ran out of memory (java.lang.OutOfMemoryError). Give it more: "
                "--driver-memory 8g for `tierlake dedup`, or spark.driver_memory / spark.conf in the recipe "
                "(spark.executor.memory on a cluster).",
                file=sys.stderr,
            )
            return 3
        raise


if __name__ == "__main__":
    sys.exit(main())
