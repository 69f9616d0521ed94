"""The template language: every construct renders as Postmark's does, every mistake is
found with its line and character, and the suggested model has the shape the content uses."""

from __future__ import annotations

from typing import Any

import pytest

from postwarden.templates.rendering import TemplateSyntaxError, content_placeholders, parse, render, suggest_model


def html(source: str, model: dict[str, Any] | None = None, **options: Any) -> str:
    return render(parse(source), model or {}, html=True, **options)


def text(source: str, model: dict[str, Any] | None = None) -> str:
    return render(parse(source), model or {}, html=False)


def test_plain_text_is_kept_as_it_is() -> None:
    assert text("Hello,\n  world! { } }} {") == "Hello,\n  world! { } }} {"
    assert text("") == ""


def test_a_value_is_escaped_in_html_and_left_alone_in_text() -> None:
    model = {"name": '<Tom & "Jerry">'}
    assert html("Hi {{name}}!", model) == "Hi &lt;Tom &amp; &quot;Jerry&quot;&gt;!"
    assert text("Hi {{name}}!", model) == 'Hi <Tom & "Jerry">!'


def test_triple_braces_and_ampersand_are_never_escaped() -> None:
    model = {"snippet": "<b>bold</b>"}
    assert html("{{{snippet}}} {{& snippet}} {{&snippet}}", model) == "<b>bold</b> <b>bold</b> <b>bold</b>"


def test_whitespace_inside_tags_is_allowed() -> None:
    model = {"a": {"b": "x"}, "items": [1, 2]}
    assert text("{{ a.b }}|{{{  a.b  }}}|{{# items }}{{ . }}{{/ items }}|{{ #each items }}-{{/each}}", model) == (
        "x|x|12|--"
    )


def test_missing_names_render_as_nothing() -> None:
    assert text("[{{missing}}][{{a.b.c}}][{{{nope}}}]", {"a": {"b": "not an object"}}) == "[][][]"


def test_dotted_names_reach_into_objects_and_list_positions() -> None:
    model = {"company": {"address": {"city": "Paris"}}, "lines": ["first", "second"]}
    assert text("{{company.address.city}} {{lines.1}} {{lines.7}}", model) == "Paris second "


def test_values_of_every_json_type_render_readably() -> None:
    model = {"yes": True, "no": False, "whole": 3, "float": 2.5, "round": 4.0, "none": None, "obj": {"k": "v"}}
    assert text("{{yes}} {{no}} {{whole}} {{float}} {{round}} [{{none}}] {{obj}}", model) == (
        'true false 3 2.5 4 [] {"k": "v"}'
    )


@pytest.mark.parametrize("falsy", [None, False, 0, "", []])
def test_a_section_hides_on_falsy_values_and_an_inverted_one_shows(falsy: Any) -> None:
    assert text("<{{#flag}}shown{{/flag}}|{{^flag}}instead{{/flag}}>", {"flag": falsy}) == "<|instead>"


@pytest.mark.parametrize("truthy", [True, 1, "yes", {}, {"k": 1}])
def test_a_section_shows_on_truthy_values(truthy: Any) -> None:
    assert text("<{{#flag}}shown{{/flag}}|{{^flag}}instead{{/flag}}>", {"flag": truthy}) == "<shown|>"


def test_a_missing_name_is_falsy() -> None:
    assert text("{{#gone}}a{{/gone}}{{^gone}}b{{/gone}}") == "b"


def test_a_section_over_a_list_repeats_with_each_item_as_scope() -> None:
    model = {"people": [{"name": "Ann"}, {"name": "Bob"}], "greeting": "Hi"}
    assert text("{{#people}}{{greeting}} {{name}}; {{/people}}", model) == "Hi Ann; Hi Bob; "


def test_a_section_over_an_object_makes_it_the_scope_and_outer_names_stay_reachable() -> None:
    model = {"company": {"name": "Acme"}, "name": "outer", "year": 2026}
    assert text("{{#company}}{{name}} {{year}}{{/company}} {{name}}", model) == "Acme 2026 outer"


def test_each_repeats_per_item_with_this_and_dot() -> None:
    model = {"tags": ["a", "<b>"], "rows": [{"id": 1}, {"id": 2}]}
    assert html("{{#each tags}}[{{this}}|{{.}}]{{/each}}", model) == "[a|a][&lt;b&gt;|&lt;b&gt;]"
    assert text("{{#each rows}}{{this.id}},{{id}};{{/each}}", model) == "1,1;2,2;"
    assert text("{{#each nothing}}x{{/each}}{{#each empty}}x{{/each}}", {"empty": []}) == ""


def test_each_over_a_single_value_renders_it_once() -> None:
    assert text("{{#each one}}<{{name}}>{{/each}}", {"one": {"name": "solo"}}) == "<solo>"


def test_nested_sections_and_lists() -> None:
    model = {"orders": [{"id": 7, "items": [{"sku": "x"}, {"sku": "y"}]}, {"id": 8, "items": []}]}
    source = "{{#each orders}}#{{id}}:{{#each items}}{{sku}}{{/each}}{{^items}}none{{/items}} {{/each}}"
    assert text(source, model) == "#7:xy #8:none "


def test_comments_render_nothing() -> None:
    assert text("a{{! note }}b{{!}}c") == "abc"
    assert text("a{{! even {{ opening braces }}b") == "ab"


def test_a_layout_places_its_content_where_the_placeholder_is() -> None:
    layout = "<header/>{{{ @content }}}<footer>{{company}}</footer>"
    assert html(layout, {"company": "A&B"}, content="<p>Body</p>") == "<header/><p>Body</p><footer>A&amp;B</footer>"
    assert html("{{{@content}}}", content="x") == "x"
    assert html("[{{{ @content }}}]") == "[]"  # a layout rendered on its own has no content


def test_content_placeholders_are_found_wherever_they_are() -> None:
    found = content_placeholders(parse("{{{ @content }}}\n{{#x}} {{{@content}}}{{/x}} {{@content}}"))
    assert [(p.line, p.character) for p in found] == [(1, 1), (2, 8)]  # the escaped form is no placeholder


@pytest.mark.parametrize(
    ("source", "message", "line", "character"),
    [
        ("Hello {{name", "'{{' is never closed with '}}'", 1, 7),
        ("a\nb {{{raw}}", "'{{{' is never closed with '}}}'", 2, 3),
        ("x {{}}", "An empty tag names no value", 1, 3),
        ("{{  }}", "An empty tag names no value", 1, 1),
        ("{{first name}}", "'first name' is not a name", 1, 1),
        ("ok\n\n  {{>partial}}", "'>partial' is not a name", 3, 3),
        ("{{#items}}\n{{/other}}", "'{{/other}}' does not close the open section 'items'", 2, 1),
        ("line one\n  {{/items}}", "'{{/items}}' closes a section that was never opened", 2, 3),
        ("{{#each people}}{{/people}}", "'{{/people}}' does not close the open section 'people'", 1, 17),
        ("{{#each}}{{/each}}", "'{{#each}}' needs the name of a list", 1, 1),
        ("{{#a}}{{#b}}{{/b}}", "The section 'a' is never closed with '{{/a}}'", 1, 1),
        ("\n{{#each rows}}", "The section 'rows' is never closed with '{{/each}}'", 2, 1),
        ("{{^}}", "An empty tag names no value", 1, 1),
        ("{{#if ready}}{{/if}}", "'if ready' is not a name", 1, 1),
    ],
)
def test_mistakes_name_their_line_and_character(source: str, message: str, line: int, character: int) -> None:
    with pytest.raises(TemplateSyntaxError) as raised:
        parse(source)
    assert raised.value.message.startswith(message), raised.value.message
    assert (raised.value.line, raised.value.character) == (line, character)
    assert str(raised.value).endswith(f"(line {line}, character {character})")


def test_the_suggested_model_has_the_shape_the_content_uses() -> None:
    subject = parse("{{name}}")
    body = parse(
        "{{content}}{{company.address}}{{#each products}}{{/each}}{{^competitors}}none{{/competitors}}"
        "{{#each people}}{{this.name}}{{age}}{{/each}}{{#account}}{{plan}}{{owner.email}}{{/account}}"
        "{{#each tags}}{{.}}{{/each}}{{{ @content }}}{{! comments name nothing }}"
    )
    assert suggest_model(subject, body) == {
        "name": "name_Value",
        "content": "content_Value",
        "company": {"address": "address_Value"},
        "products": ["products_Value"] * 3,
        "competitors": "competitors_Value",
        "people": [{"name": "name_Value", "age": "age_Value"}] * 3,
        "account": {"plan": "plan_Value", "owner": {"email": "email_Value"}},
        "tags": ["tags_Value"] * 3,
    }


def test_the_suggestion_merges_every_use_of_a_name() -> None:
    assert suggest_model(parse("{{user.name}}"), parse("{{#user}}{{email}}{{/user}}")) == {
        "user": {"name": "name_Value", "email": "email_Value"}
    }
    assert suggest_model(parse("no names here")) == {}


def test_a_suggested_model_renders_every_part_of_the_content() -> None:
    nodes = parse("{{#each people}}<{{name}}>{{/each}}{{#account}}[{{plan}}]{{/account}}")
    assert render(nodes, suggest_model(nodes), html=False) == "<name_Value><name_Value><name_Value>[plan_Value]"
