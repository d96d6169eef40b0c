"""Regions as of 2023 with streets/townships: the API, the address check, the seed file."""

from __future__ import annotations

import pytest

from breakwater.common.errors import ApiError


def get(http, origin, path):
    return http.get(f"{origin}{path}", timeout=10)


def test_a_code_created_after_2016_resolves_with_its_parent_chain(http, origin):
    luanzhou = get(http, origin, "/api/regions/130284").json()  # 滦州市: 滦县 became a city in 2018
    assert (luanzhou["name"], luanzhou["level"], luanzhou["parent"]) == ("滦州市", "district", "130200")
    assert [(a["code"], a["name"]) for a in luanzhou["ancestors"]] == [("130000", "河北省"), ("130200", "唐山市")]
    tangshan = get(http, origin, "/api/regions/130200").json()["children"]
    assert {"code": "130284", "name": "滦州市", "level": "district"} in tangshan


def test_a_street_lists_under_its_district(http, origin):
    nanshan = get(http, origin, "/api/regions/440305").json()
    assert {"code": "440305001", "name": "南头街道", "level": "street"} in nanshan["children"]
    assert all(len(c["code"]) == 9 for c in nanshan["children"])
    street = get(http, origin, "/api/regions/440305001").json()
    assert (street["name"], street["level"], street["parent"]) == ("南头街道", "street", "440305")
    assert street["children"] == []
    assert [a["code"] for a in street["ancestors"]] == ["440000", "440300", "440305"]


def test_a_city_without_districts_lists_its_towns(http, origin):
    dongguan = get(http, origin, "/api/regions/441900").json()
    assert dongguan["level"] == "city"
    assert {"code": "441900003", "name": "东城街道", "level": "street"} in dongguan["children"]


@pytest.mark.parametrize("code", ["4403051", "44030500", "4403050011", "44030x001"])
def test_codes_other_than_6_or_9_digits_are_400(http, origin, code):
    resp = get(http, origin, f"/api/regions/{code}")
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_region_code"


def test_validate_address_code_takes_a_current_district_or_street(db):
    from breakwater.regions.services import parent_chain, validate_address_code

    assert validate_address_code(db.session, "440305").name == "南山区"
    assert validate_address_code(db.session, "440305001").name == "南头街道"
    assert validate_address_code(db.session, "810000").name == "香港特别行政区"  # no finer official codes
    for code in ("440000", "440300", "441900", "999999", "130223", "4403", 440305, None):
        with pytest.raises(ApiError) as err:
            validate_address_code(db.session, code)
        assert (err.value.status, err.value.code) == (400, "invalid_region"), code
    assert [r.code for r in parent_chain(db.session, "441900003")] == ["440000", "441900", "441900003"]


def test_the_seed_has_four_levels_as_of_2023(db):
    from sqlalchemy import func, select

    from breakwater.regions.models import Region

    counts = dict(db.session.execute(select(Region.level, func.count()).group_by(Region.level)).all())
    assert counts == {1: 34, 2: 341, 3: 2975, 4: 41352}
