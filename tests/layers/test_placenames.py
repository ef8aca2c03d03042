"""Place-name matching on the 130 real wards and communes of Nghệ An."""

from __future__ import annotations

import unicodedata

import pytest
from sqlalchemy import Engine

from layers.demo.boundaries import Ward, load_wards
from layers.features.placenames import DEFAULT_PREFIX_ONLY, Gazetteer, fold

WARDS = load_wards()
CODE = {w.name: w.code for w in WARDS}


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return Gazetteer.from_units([(w.code, w.name, w.kind) for w in WARDS])


def test_fold() -> None:
    assert fold("Đô Lương") == "do luong"
    assert fold("Nghĩa ĐÀN") == "nghia dan"
    assert fold(unicodedata.normalize("NFD", "Thành Vinh")) == "thanh vinh"


def test_real_names_do_not_collide_after_folding(gaz: Gazetteer) -> None:
    assert len(gaz) == 130
    assert gaz.collisions() == {}
    # names that contain another name: only a longest match can tell them apart
    folded = {fold(w.name) for w in WARDS}
    inside = {(a, b) for a in folded for b in folded if a != b and f" {a} " in f" {b} "}
    assert inside == {("anh son", "anh son dong"), ("hung nguyen", "hung nguyen nam")}


@pytest.mark.parametrize("ward", WARDS, ids=lambda w: w.code)
def test_every_real_name_matches_in_every_spelling(gaz: Gazetteer, ward: Ward) -> None:
    name, code = ward.name, ward.code
    plain = fold(name)
    prefix = "phường" if ward.kind == "Phường" else "xã"
    # a name that is also a newspaper's counts only after a prefix
    lead = f"{prefix} " if plain in DEFAULT_PREFIX_ONLY else ""
    texts = [
        f"Mưa lớn gây ngập tại {lead}{name} chiều nay",
        f"mua lon gay ngap tai {fold(lead)}{plain} chieu nay",  # no diacritics, lower case
        f"MƯA LỚN Ở {lead.upper()}{name.upper()}",  # all capitals
        f"Mưa lớn ở {lead}{plain.title()} chiều nay",  # marks left out in accented text
        f"UBND {prefix} {name.lower()} họp",
        unicodedata.normalize("NFD", f"Tin từ {lead}{name}."),  # decomposed input
    ]
    for t in texts:
        m = gaz.match(t)
        assert (m.status, m.code, m.name) == ("matched", code, name), t
        assert m.span is not None and fold(t[m.span[0] : m.span[1]]) == plain, t


def test_span_and_candidates(gaz: Gazetteer) -> None:
    text = "Sạt lở đất ở xã Mường Xén, 3 hộ phải di dời"
    m = gaz.match(text)
    assert m.status == "matched" and m.candidates == [CODE["Mường Xén"]]
    assert m.span == (16, 25) and text[16:25] == "Mường Xén" == m.matched_text
    assert m.mentions[0].prefixed


@pytest.mark.parametrize(
    "text",
    [
        "P.Thành Vinh tổ chức ra quân",
        "P. Thành Vinh tổ chức ra quân",
        "Phường Thành Vinh tổ chức ra quân",
        "phường thành vinh tổ chức ra quân",
        "tp. thanh vinh",
        "Tại phường: Thành Vinh",
    ],
)
def test_prefixes(gaz: Gazetteer, text: str) -> None:
    m = gaz.match(text)
    assert m.code == CODE["Thành Vinh"] and m.mentions[0].prefixed, text


def test_longest_match_wins(gaz: Gazetteer) -> None:
    assert gaz.match("Lúa ở Hưng Nguyên Nam bị ngập").code == CODE["Hưng Nguyên Nam"]
    assert gaz.match("Lúa ở Hưng Nguyên bị ngập").code == CODE["Hưng Nguyên"]
    assert gaz.match("xa anh son dong").code == CODE["Anh Sơn Đông"]
    assert gaz.match("Trường học ở Anh Sơn").code == CODE["Anh Sơn"]
    # a comma ends a name: two communes, not "Hưng Nguyên Nam"
    m = gaz.match("Ngập ở Hưng Nguyên, Nam Đàn")
    assert m.status == "ambiguous"
    assert m.candidates == [CODE["Hưng Nguyên"], CODE["Nam Đàn"]]
    # without the comma, the reading covering every word wins
    m = gaz.match("HƯNG NGUYÊN NAM ĐÀN")
    assert [x.text for x in m.mentions] == ["HƯNG NGUYÊN", "NAM ĐÀN"]


def test_diacritics_disambiguate() -> None:
    # a hypothetical gazetteer where three names fold to the same letters
    gaz = Gazetteer.from_units(
        [
            ("1", "Thành Vinh", "Phường"),
            ("2", "Thạnh Vinh", "Xã"),
            ("3", "Thanh Vinh", "Xã"),
            ("4", "Trường Vinh", "Phường"),
        ]
    )
    assert gaz.collisions() == {"thanh vinh": ["1", "2", "3"]}
    assert gaz.match("Tin ở Thành Vinh").code == "1"
    assert gaz.match("Tin ở Thạnh Vinh").code == "2"
    assert gaz.match("Tin ở Trường Vinh").code == "4"
    plain = gaz.match("Tin o Thanh Vinh")
    assert plain.status == "ambiguous" and plain.candidates == ["1", "2", "3"]
    assert plain.code is None and plain.span == (6, 16)
    # the prefix's kind narrows it when marks cannot
    assert gaz.match("tin o phuong thanh vinh").code == "1"
    assert gaz.match("xa thanh vinh").candidates == ["2", "3"]
    # a marked spelling that fits none of them is another word
    assert gaz.match("Tin ở Thánh Vinh").status == "none"
    # a later marked mention settles an unmarked one
    assert gaz.match("Thanh Vinh: ngập ở Thành Vinh").code == "1"


VINH_WARDS = sorted(CODE[n] for n in CODE if "Vinh" in n.split())


def test_former_city_of_vinh_is_ambiguous(gaz: Gazetteer) -> None:
    assert len(VINH_WARDS) == 5
    for text in ("Người dân TP Vinh cũ bức xúc", "Ở thành phố Vinh, trời mưa", "Tại TP. Vinh"):
        m = gaz.match(text)
        assert (m.status, m.candidates) == ("ambiguous", VINH_WARDS), text
        assert m.span is not None and text[m.span[0] : m.span[1]] == "Vinh"
    # with no marks anywhere, "Vinh" may also be Vĩnh Tường
    m = gaz.match("Nguoi dan TP Vinh cu buc xuc")
    assert m.status == "ambiguous"
    assert m.candidates == sorted([*VINH_WARDS, CODE["Vĩnh Tường"]])
    # settled by a ward named next to it
    assert gaz.match("TP Vinh cũ, nay là phường Trường Vinh").code == CODE["Trường Vinh"]
    # no prefix, or a name that goes on: not a mention
    for text in ("Trường Đại học Vinh", "Vinh danh điển hình", "xã Cửa Tùng, Quảng Trị"):
        assert gaz.match(text).status == "none", text


def test_tone_placement_does_not_matter(gaz: Gazetteer) -> None:
    assert gaz.match("Nhân Hoà").code == CODE["Nhân Hòa"]
    assert gaz.match("Yên Hoà và Yên Hòa").code == CODE["Yên Hòa"]


def test_several_communes_are_ambiguous(gaz: Gazetteer) -> None:
    m = gaz.match("Đoàn công tác làm việc tại Cửa Lò và Thành Vinh")
    assert m.status == "ambiguous" and m.code is None
    assert m.candidates == [CODE["Cửa Lò"], CODE["Thành Vinh"]]
    assert [x.text for x in m.mentions] == ["Cửa Lò", "Thành Vinh"]
    # the same commune twice is still one match
    m = gaz.match("Cửa Lò đón khách; bãi biển Cửa Lò đông")
    assert m.status == "matched" and len(m.mentions) == 2


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Hội nghị tổng kết công tác năm 2025 của tỉnh Nghệ An",
        "Dự án Vinhomes khởi công",  # "Vinh" inside another word
        "Vinh danh các điển hình tiên tiến",  # "Vinh" alone is no current unit
        "Thanhvinh",
        "anh Sơn cho biết lũ đã rút",  # "anh" (Mr.) + a person's name
        "Chúc mừng năm mới, phúc lộc đầy nhà",  # common words in lower case
        "Bình minh trên biển",
        "Nền văn hiến lâu đời",
        "Theo báo Tiền Phong, giá xăng tăng",  # a newspaper, not the commune
        "Tin ở Thánh Vinh",  # marks that fit no name
        "Hưng-Nguyên",
        "Ông Nguyễn Văn Hiến phát biểu",  # people named like communes
        "Chị Lê Thị Kim Liên nhận giải",
        "Em Trần Quỳnh Anh đạt giải nhất",
    ],
)
def test_no_false_positives(gaz: Gazetteer, text: str) -> None:
    m = gaz.match(text)
    assert (m.status, m.code, m.candidates, m.span) == ("none", None, [], None), text


def test_guards_yield_to_prefixes(gaz: Gazetteer) -> None:
    assert gaz.match("Ông A, xã Tiền Phong, cho biết").code == CODE["Tiền Phong"]
    assert gaz.match("Lũ ở xã phúc lộc").code == CODE["Phúc Lộc"]
    # all lower case or all capitals: case says nothing, so it is ignored
    assert gaz.match("lu lut o phuc loc").code == CODE["Phúc Lộc"]
    assert gaz.match("LŨ LỤT Ở PHÚC LỘC").code == CODE["Phúc Lộc"]
    # a person and, later, the commune
    m = gaz.match("Ông Nguyễn Văn Hiến, Chủ tịch UBND xã Văn Hiến, cho biết")
    assert m.code == CODE["Văn Hiến"] and m.span == (38, 46)


def test_bad_units_are_refused() -> None:
    with pytest.raises(ValueError, match="#1"):
        Gazetteer.from_units([("1", "A B", "Xã"), ("2", "", "Xã")])
    with pytest.raises(ValueError, match="duplicate"):
        Gazetteer.from_units([("1", "A B", "Xã"), ("1", "C D", "Xã")])


def test_many_items(gaz: Gazetteer) -> None:
    names = [w.name for w in WARDS]
    texts = [f"Tin số {i}: sự việc ở xã {names[i % 130]} được xử lý" for i in range(3000)]
    got = gaz.match_many(texts)
    assert [m.code for m in got] == [CODE[names[i % 130]] for i in range(3000)]


def test_current_units_from_db(seeded: Engine) -> None:
    from layers.features.gazetteer import current_units

    with seeded.connect() as conn:
        units = current_units(conn)
    assert len(units) == 130 and ("16681", "Thành Vinh", "Phường") in units
    gaz = Gazetteer.from_units(units)
    assert gaz.match("ngập ở xã Kim Liên").code == "17971"
