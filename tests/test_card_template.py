"""The card template is untrusted (it changes in pull requests): it renders in a sandbox that
holds plain data only, reads no other file, and is bounded in time and size. Every hostile
template ends as one ``R1ReleaseError`` line ``card.md.j2:<line>: ...`` (exit code 1), with
no file written and no token anywhere."""

from __future__ import annotations

import re
import time

import pytest

from r1release.card import MAX_CARD_BYTES, ReleaseInfo, render_card
from r1release.config import ModelConfig
from r1release.errors import R1ReleaseError

import reliability

RELIABILITY_AREA = "Hostile input"
record = pytest.fixture(reliability.record)

CANARY = "hf_cardTemplateCanary0123456789abcdef"
SECRET = "secret-file-content-0123456789"
NAME = "card.md.j2"
LOCATED = re.compile(r"card\.md\.j2:(\d+): \S")

# id -> (template, the line the error names)
READ_FILE = {
    "pathlib read_text": (
        "# {{ model.name }}\n{{ model.checkpoint.joinpath('/proc/self/environ').read_text() }}",
        2,
    ),
    "pathlib read of a sibling": (
        "{{ model.checkpoint.parent.joinpath('secret.txt').read_text() }}",
        1,
    ),
    "__class__ gadget": (
        "{{ model.__class__.__init__.__globals__['os'].environ['HF_TOKEN'] }}",
        1,
    ),
    "__class__ of a string": ("{{ model.checkpoint.__class__.__base__.__subclasses__() }}", 1),
    "__globals__ via cycler": ("{{ cycler.__init__.__globals__.os.environ.HF_TOKEN }}", 1),
    "__globals__ via a cycler instance": (
        "{{ cycler(1, 2).__class__.__init__.__globals__.os.environ }}",
        1,
    ),
    "__globals__ via joiner": ("{{ joiner.__init__.__globals__.os.environ.HF_TOKEN }}", 1),
    "__globals__ via namespace": (
        "{{ namespace.__init__.__globals__.os.environ.HF_TOKEN }}",
        1,
    ),
    "__globals__ via lipsum": ("{{ lipsum.__globals__['os'].environ['HF_TOKEN'] }}", 1),
    "__globals__ via range": ("{{ range.__globals__.os.environ.HF_TOKEN }}", 1),
    "__globals__ via self": ("{{ self.__init__.__globals__.os.environ.HF_TOKEN }}", 1),
    "template context via self": ("{{ self._TemplateReference__context.environment }}", 1),
    "format-string attribute walk": (
        "{{ '{0.__class__.__init__.__globals__}'.format(model) }}",
        1,
    ),
    "attr filter": ("{{ (model|attr('__class__')).__init__.__globals__ }}", 1),
    "summary object": ("{{ summary.__class__.__module__ }}", 1),
}
WRITE_FILE = {
    "pathlib write_text": (
        "{{ model.checkpoint.joinpath('pwned.txt').write_text('pwned') }}",
        1,
    ),
    "pathlib touch": ("{% set p = model.checkpoint %}\n{{ p.joinpath('pwned').touch() }}", 2),
    "dict mutation": ("{{ model.update({'name': 'x'}) }}", 1),
}
READ_TEMPLATE = {
    "include": ("# Card\n{% include 'other.md' %}", 2),
    "import": ("{% import 'other.md' as other %}{{ other }}", 1),
    "from import": ("\n\n{% from 'other.md' import x %}", 3),
    "extends": ("{% extends 'other.md' %}", 1),
    "include in a macro": ("{% macro m() %}\n{% include 'other.md' %}{% endmacro %}", 2),
}
BOMBS = {
    "'x' * 10**10": ("{{ 'x' * 10**10 }}", 1),
    "4 GB string": ("# big\n{{ 'x' * 4 * 1024**3 }}", 2),
    "range(10**10)": ("{% for i in range(10**10) %}{{ i }}{% endfor %}", 1),
    "huge integer": ("{{ 9 ** (9 ** 9) }}", 1),
    "doubling with ~": (
        "{% set ns = namespace(s='x') %}\n{% for i in range(64) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
        2,
    ),
    "doubling with +": (
        "{% set ns = namespace(s=['x']) %}{% for i in range(64) %}"
        "{% set ns.s = ns.s + ns.s %}{% endfor %}",
        1,
    ),
    "nested list printed": (
        "{% set ns = namespace(s=['x']) %}{% for i in range(64) %}"
        "{% set ns.s = [ns.s, ns.s] %}{% endfor %}\n\n{{ ns.s }}",
        3,
    ),
    "str.center": ("{{ 'x'.center(4 * 1024**3) }}", 1),
    "center filter": ("{{ 'x'|center(4294967296) }}", 1),
    "printf width": ("{{ '%4294967296s' % 'x' }}", 1),
    "format filter width": ("{{ '%4294967296s'|format('x') }}", 1),
    "str.format width": ("{{ '{:>4294967296}'.format('x') }}", 1),
    "int.to_bytes": ("{{ (1).to_bytes(4294967296, 'big') }}", 1),
    "str.replace": ("{% set s = 'x' * 1000000 %}{{ s.replace('x', s) }}", 1),
    "replace filter": ("{% set s = 'x' * 1000 %}{{ (s * 1000)|replace('x', s) }}", 1),
    "join of a lazy map": ("{{ range(100000)|map('center', 1000000)|join }}", 1),
    "str.join": ("{{ ('x' * 10000).join('y' * 10000) }}", 1),
    "lazy map spread into a call": (
        "{{ cycler(*(range(100000)|map('center', 1000000))) }}",
        1,
    ),
    "card over 1 MiB": (
        "{% set s = 'x' * 1000000 %}\n{% for i in range(100000) %}{{ s }}{% endfor %}",
        2,
    ),
    "set block over 1 MiB": (
        "{% set s = 'x' * 1000 %}{% set b %}{% for i in range(100000) %}"
        "{{ s }}{% endfor %}{% endset %}",
        1,
    ),
}
HOSTILE = {
    **{f"read a file: {k}": v for k, v in READ_FILE.items()},
    **{f"write a file: {k}": v for k, v in WRITE_FILE.items()},
    **{f"read another template: {k}": v for k, v in READ_TEMPLATE.items()},
    **{f"bomb: {k}": v for k, v in BOMBS.items()},
}


def model_config(path):
    return ModelConfig(
        name="OpenR1-Tiny",
        checkpoint=path,
        repo_id="org/OpenR1-Tiny",
        base_model="Qwen/Qwen2.5-0.5B",
        dataset_name="open-r1/Mixture-of-Thoughts",
        license="apache-2.0",
    )


def listing(root):
    return sorted(
        (str(p.relative_to(root)), p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in root.rglob("*")
    )


@pytest.fixture
def workspace(checkpoint, tmp_path, monkeypatch):
    """A checkpoint with a real template and a secret file beside it, a canary token in the
    environment, and the working directory in the same place."""
    monkeypatch.setenv("HF_TOKEN", CANARY)
    monkeypatch.chdir(tmp_path)
    path = checkpoint()
    (tmp_path / "other.md").write_text(f"{{{{ 'INCLUDED' }}}} {SECRET}\n")
    (path / "other.md").write_text(f"INCLUDED {SECRET}\n")
    (tmp_path / "secret.txt").write_text(SECRET)
    return path


def render(path, template, **kwargs):
    return render_card(
        path,
        model_config(path),
        ReleaseInfo(version="v1.2.3", git_commit="c" * 40, date="2026-01-02"),
        template,
        template_name=NAME,
        **kwargs,
    )


def refused(path, template, *, within=5.0):
    """The R1ReleaseError ``template`` ends in, after checking what every refusal must be."""
    root = path.parent
    before = listing(root)
    start = time.monotonic()
    with pytest.raises(R1ReleaseError) as info:
        render(path, template)
    elapsed = time.monotonic() - start
    exc = info.value
    text = str(exc)
    assert exc.exit_code == 1
    assert "\n" not in text and "\r" not in text, text
    assert LOCATED.match(text), text
    assert CANARY not in text and "***" not in text  # never reached, not merely redacted
    assert SECRET not in text and "INCLUDED" not in text
    assert "Traceback" not in text
    assert listing(root) == before  # nothing written, nothing touched
    assert elapsed < within, f"took {elapsed:.1f} s"
    return exc


@pytest.mark.parametrize(("template", "line"), list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_card_template_is_refused(workspace, record, request, template, line):
    exc = refused(workspace, template)
    case = request.node.callspec.id
    record(f"card template: {case}", template, exc, message=str(exc))
    assert str(exc).startswith(f"{NAME}:{line}: "), str(exc)


def test_template_gets_plain_data_only(workspace, record):
    """What a template can reach is strings, numbers, lists and dicts: the checkpoint is its
    path as text, and no method on it reaches the file system."""
    text = render(
        workspace,
        "{{ model.checkpoint is string }} {{ model.tags is sequence }} {{ summary is mapping }}"
        " {{ release is mapping }} {{ versions is mapping }} {{ model.private }}",
    )
    record(
        "card template gets plain data",
        "model.checkpoint is string, ...",
        text,
        message=f"renders {text.strip()}",
    )
    assert text.split() == ["True"] * 5 + ["True"]
    assert str(workspace) in render(workspace, "{{ model.checkpoint }}")


def test_endless_template_is_stopped_with_its_line(workspace, record, monkeypatch):
    monkeypatch.setenv("R1RELEASE_TEMPLATE_TIMEOUT", "0.5")
    template = (
        "# card\n{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    )
    exc = refused(workspace, template, within=5.0)
    record("card template loops for hours", "range(100000) x range(100000)", exc, message=str(exc))
    assert str(exc).startswith(f"{NAME}:2: rendering took longer than 0.5 s"), str(exc)


def test_syntax_error_names_file_and_line(workspace, record):
    exc = refused(workspace, "# {{ model.name }}\n\nText\n{% if %}\n")
    record("card template syntax error", "{% if %} on line 4", exc, message=str(exc))
    assert str(exc).startswith(f"{NAME}:4: "), str(exc)


def test_runtime_error_names_the_template_line(workspace):
    """Runtime errors are located from the traceback: inside a loop, inside a macro."""
    in_loop = "# t\n{% for k in [1, 2] %}\n- {{ k }}\n- {{ missing_value }}\n{% endfor %}\n"
    assert str(refused(workspace, in_loop)).startswith(f"{NAME}:4: 'missing_value' is undefined")
    in_macro = (
        "{% macro row(x) %}\n| {{ x }} |\n| {{ x / 0 }} |\n{% endmacro %}\n\n\n{{ row(1) }}\n"
    )
    assert str(refused(workspace, in_macro)).startswith(f"{NAME}:3: ZeroDivisionError")


def test_without_a_name_the_error_says_card_template(workspace):
    with pytest.raises(R1ReleaseError) as info:
        render_card(workspace, model_config(workspace), template="\n{{ nope }}")
    assert str(info.value).startswith("card template:2: 'nope' is undefined")


def test_card_of_exactly_the_limit_renders_and_one_more_byte_is_refused(workspace):
    body = MAX_CARD_BYTES - 1  # the card ends with one newline
    assert len(render(workspace, f"{{{{ 'x' * {body} }}}}").encode()) == MAX_CARD_BYTES
    exc = refused(workspace, f"{{{{ 'é' * {body // 2 + 1} }}}}")
    assert "larger than" in str(exc)


def test_well_formed_custom_template_renders(workspace, record):
    (workspace / "all_results.json").write_text(
        '{"train_loss": 1.23456, "train_runtime": 10, "epoch": 2.0, "eval_loss": 0.75}'
    )
    template = """\
---
{{ card_data }}
---
# {{ model.name }} {{ release.version }}

Base: {{ model.base_model }}; checkpoint folder: {{ model.checkpoint.split('/')[-1] }}.
{% for key, value in summary.metrics|dictsort %}- {{ key }} = {{ value|metric }}
{% endfor %}{% for key, value in summary.eval_metrics|dictsort %}| {{ key }} | {{ value|metric }} |
{% endfor %}epochs: {{ "%.1f"|format(summary.epochs) }}; {{ model.tags|join(", ") }};\
 {{ versions|length > 0 }}; {{ [1, 2, 3]|sum }}; {{ 'ab' ~ 'cd'|upper }}; {{ 2 ** 10 }};\
 {{ range(3)|list }}; {{ '%s-%d'|format('v', 7) }}; {{ '{}!'.format('hi') }}
{% set ns = namespace(total=0) %}{% for i in range(4) %}{% set ns.total = ns.total + i %}\
{% endfor %}total {{ ns.total }}
"""
    text = render(workspace, template)
    record(
        "well-formed custom card template",
        "model, release, summary, |metric",
        text,
        message="renders: " + next(line for line in text.splitlines() if line.startswith("# ")),
    )
    assert "# OpenR1-Tiny v1.2.3\n" in text
    assert text.startswith("---\nbase_model: Qwen/Qwen2.5-0.5B\n")
    assert "Base: Qwen/Qwen2.5-0.5B; checkpoint folder: qwen2.5-7b-instruct." in text
    assert "- train_loss = 1.235\n- train_runtime = 10\n" in text
    assert "| eval_loss | 0.75 |" in text
    assert "epochs: 2.0; open-r1; True; 6; abCD; 1024; [0, 1, 2]; v-7; hi!\ntotal 6\n" in text


def test_the_cli_names_release_yamls_template_file(checkpoint, tmp_path, monkeypatch):
    """`card` with release.yaml's `card: {template: ...}`: the one error line names that file
    and the template's line; exit 1, nothing written."""
    from click.testing import CliRunner

    from r1release.cli import main

    from helpers import write_release_yaml

    write_release_yaml(tmp_path, checkpoint(), card="{template: card.md.j2}")
    (tmp_path / "card.md.j2").write_text("# {{ model.name }}\n\n{% include 'other.j2' %}\n")
    (tmp_path / "other.j2").write_text("secret\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["card", "-o", str(tmp_path / "README.md")])
    assert result.exit_code == 1, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and "card.md.j2:3:" in line and "include" in line
    assert not (tmp_path / "README.md").exists()


COMPILE_FAILURES = {
    # RecursionError while jinja2 parses: no template frame has run yet
    "deeply nested parentheses": ("# t\n\n{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}\n", 3),
    "deeply nested list": ("# t\n{{ " + "[" * 2000 + "]" * 2000 + " }}\n", 2),
    # RecursionError while jinja2 compiles the parsed tree
    "a very long sum": ("# t\n\n\n{{ 1" + " + 1" * 5000 + " }}\n", 4),
    # Python's own SyntaxError on jinja2's generated code, which names a generated line
    "too many nested blocks": ("# t\n\n" + "{% for i in [1] %}\n" * 25 + "{% endfor %}" * 25, 23),
}


@pytest.mark.parametrize(
    ("template", "line"), list(COMPILE_FAILURES.values()), ids=list(COMPILE_FAILURES)
)
def test_a_template_that_cannot_compile_names_its_line(workspace, template, line):
    """Issue 15: failures before the template runs (parsing, compiling) name file and line
    too, and never a line of jinja2's generated Python."""
    exc = refused(workspace, template)
    assert str(exc).startswith(f"{NAME}:{line}: "), str(exc)
    assert "<template>" not in str(exc)
