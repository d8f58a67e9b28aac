"""Borrowers and guarantors through the API: registration, ID checks, masking, scope, duplicates."""

from __future__ import annotations

import json

from tests.support import (
    TODAY,
    Api,
    World,
    assert_problem,
    make_uscc,
    register_guarantor,
    register_person,
    resident_id,
)


async def test_register_individual(world: World) -> None:
    window = await world.caller("window", region="2301")
    number = resident_id("19640501", female=True)
    response = await window.post(
        "/borrowers",
        {
            "kind": "individual",
            "id_number": number,
            "name": "Wang Fang",
            "phone": "13800000000",
            "categories": ["veteran", "laid_off", "laid_off"],
            "certificates": [
                {
                    "kind": "reemployment",
                    "number": "HLJ-0001",
                    "issued_on": "2003-05-01",
                    "inspected_year": 2004,
                }
            ],
            "credit_community": True,
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["id_number_masked"] == f"{number[:6]}********{number[-4:]}"
    assert body["id_number"] is None
    assert body["birth_date"] == "1964-05-01"
    assert body["gender"] == "female"
    assert body["is_4050"] is True  # as of today
    assert body["categories"] == ["laid_off", "veteran"]  # canonical order, once each
    assert body["credit_community"] is True and body["syb_trained"] is False
    assert body["region_code"] == "2301"
    assert number not in response.text


async def test_id_number_checks(world: World) -> None:
    window = await world.caller("window", region="2301")

    async def register(number: object) -> object:
        return await window.post(
            "/borrowers", {"kind": "individual", "id_number": number, "name": "X", "categories": ["graduate"]}
        )

    good = resident_id("19900101", female=False)
    wrong_check = good[:-1] + ("0" if good[-1] != "0" else "1")
    body = assert_problem(await register(wrong_check), 422, "invalid_id_number")
    assert body["reason"] == "check_digit"
    for bad in [
        resident_id("19900230", female=False),  # no such day
        resident_id("20991231", female=False),  # in the future
        good[:17],
        good + "1",
        "23010219900101011A",
    ]:
        assert_problem(await register(bad), 422, "invalid_id_number")
    assert_problem(await register(19900101), 422, "validation_error")
    # The district code is not judged against the birth year, only its province must exist.
    assert (await register(resident_id("19500101", female=True, district="239901"))).status_code == 201
    body = assert_problem(
        await register(resident_id("19500101", female=True, district="990101")), 422, "invalid_id_number"
    )
    assert body["reason"] == "province"
    for born in ("18000101", "19001231"):
        body = assert_problem(await register(resident_id(born, female=True)), 422, "invalid_id_number")
        assert body["reason"] == "birth_date" and "after 1900" in body["detail"]
    spaced = resident_id("19900102", female=False)
    body = assert_problem(await register(f"{spaced[:6]} {spaced[6:]}"), 422, "invalid_id_number")
    assert body["reason"] == "format" and "spaces" in body["detail"]
    assert (await register(f" {spaced} ")).status_code == 201  # only the ends are trimmed
    # Lower-case x is accepted and stored upper-case.
    for seq in range(10, 99):
        number = resident_id("19850505", female=True, seq=str(seq))
        if number.endswith("X"):
            break
    response = await register(number[:-1] + "x")
    assert response.status_code == 201, response.text
    assert response.json()["id_number_masked"].endswith("X")


async def test_bad_registrations(world: World, admin: Api) -> None:
    window = await world.caller("window", region="2301")
    base = {"kind": "individual", "id_number": resident_id("19900101", female=False), "name": "X"}
    body = assert_problem(
        await window.post("/borrowers", {**base, "categories": ["astronaut"]}), 422, "validation_error"
    )
    assert body["errors"][0]["field"] == "categories[0]"
    assert_problem(await window.post("/borrowers", {**base, "categories": []}), 422, "validation_error")
    assert_problem(
        await window.post("/borrowers", {**base, "categories": ["small_firm"]}), 422, "validation_error"
    )
    assert_problem(
        await window.post("/borrowers", {**base, "categories": ["graduate"], "x": 1}), 400, "unknown_field"
    )
    assert_problem(
        await window.post("/borrowers", {**base, "kind": "alien", "categories": ["graduate"]}),
        422,
        "validation_error",
    )
    cert = {"kind": "reemployment", "number": "C1", "issued_on": "2027-01-01", "inspected_year": 2026}
    assert_problem(
        await window.post("/borrowers", {**base, "categories": ["laid_off"], "certificates": [cert]}),
        422,
        "future_date",
    )
    cert = {"kind": "diploma", "number": "C1", "issued_on": "2020-01-01", "inspected_year": 2026}
    assert_problem(
        await window.post("/borrowers", {**base, "categories": ["laid_off"], "certificates": [cert]}),
        422,
        "validation_error",
    )
    # An admin says which region; other roles may not register.
    assert_problem(
        await admin.post("/borrowers", {**base, "categories": ["graduate"]}), 422, "validation_error"
    )
    manager = await world.caller("fund_manager", region="2301")
    assert_problem(await manager.post("/borrowers", {**base, "categories": ["graduate"]}), 403, "forbidden")
    response = await admin.post("/borrowers", {**base, "categories": ["graduate"], "region_code": "230100"})
    assert response.status_code == 201, response.text


async def test_register_enterprise(world: World) -> None:
    window = await world.caller("window", region="2301")
    code = make_uscc()
    body = {
        "kind": "enterprise",
        "uscc": code.lower(),
        "name": "Harbin Noodles Ltd",
        "staff_count": 40,
        "eligible_new_hires": 12,
    }
    response = await window.post("/borrowers", body)
    assert response.status_code == 201, response.text
    firm = response.json()
    assert (firm["kind"], firm["uscc"], firm["categories"], firm["is_4050"]) == (
        "enterprise",
        code,
        ["small_firm"],
        False,
    )
    assert firm["id_number_masked"] is None and firm["birth_date"] is None
    wrong = code[:-1] + ("0" if code[-1] != "0" else "1")
    assert_problem(await window.post("/borrowers", {**body, "uscc": wrong}), 422, "invalid_id_number")
    assert_problem(
        await window.post("/borrowers", {**body, "uscc": make_uscc("MA1B2C3D5"), "eligible_new_hires": 41}),
        422,
        "validation_error",
    )
    assert_problem(
        await window.post("/borrowers", {**body, "uscc": make_uscc("MA1B2C3D5"), "categories": ["graduate"]}),
        422,
        "validation_error",
    )
    assert_problem(await window.post("/borrowers", body), 409, "duplicate")


async def test_one_record_per_person_shared_with_the_second_region(world: World) -> None:
    harbin = await world.caller("window", region="2301")
    qiqihar = await world.caller("window", region="2302")
    person = await register_person(harbin)
    assert_problem(await qiqihar.get(f"/borrowers/{person['id']}"), 404, "not_found")
    number = resident_id("19800101", female=False, seq="01")
    found = (await qiqihar.get("/borrowers", {"id_number": number})).json()
    assert found["items"] == []

    again = await qiqihar.post(
        "/borrowers",
        {"kind": "individual", "id_number": number, "name": "Same person", "categories": ["graduate"]},
    )
    body = assert_problem(again, 409, "duplicate")
    assert body["id"] == person["id"]
    shared = await qiqihar.get(f"/borrowers/{person['id']}")
    assert shared.status_code == 200, shared.text
    assert shared.json()["regions"] == ["2301", "2302"]
    assert shared.json()["name"] == person["name"]  # the first record stands
    found = (await qiqihar.get("/borrowers", {"id_number": number.lower()})).json()
    assert [item["id"] for item in found["items"]] == [person["id"]]
    # Registering again from the same region is still a duplicate, and changes nothing more.
    assert_problem(
        await harbin.post(
            "/borrowers", {"kind": "individual", "id_number": number, "name": "Y", "categories": ["graduate"]}
        ),
        409,
        "duplicate",
    )
    assert (await harbin.get(f"/borrowers/{person['id']}")).json()["regions"] == ["2301", "2302"]


async def test_reads_by_role_and_scope(world: World) -> None:
    window = await world.caller("window", region="2301")
    person = await register_person(window)
    for role, region in [("fund_manager", "23"), ("auditor", "2301")]:
        reader = await world.caller(role, region=region)
        response = await reader.get(f"/borrowers/{person['id']}")
        assert response.status_code == 200, response.text
        assert response.json()["id_number"] is None
    far = await world.caller("auditor", region="11")
    assert_problem(await far.get(f"/borrowers/{person['id']}"), 404, "not_found")
    bank = await world.caller("bank", bank="ICBC")
    assert_problem(await bank.get(f"/borrowers/{person['id']}"), 404, "not_found")
    assert (await bank.get("/borrowers")).json()["items"] == []
    assert_problem(await window.get("/borrowers/bor_nothing"), 404, "not_found")
    listed = (await window.get("/borrowers", {"limit": 1})).json()
    assert [item["id"] for item in listed["items"]] == [person["id"]]


async def test_audit_log_never_holds_the_full_number(world: World, admin: Api) -> None:
    window = await world.caller("window", region="2301")
    person = await register_person(window)
    number = resident_id("19800101", female=False, seq="01")
    guarantor = await register_guarantor(window)
    records = (await admin.get("/audit", {"entity": f"borrower:{person['id']}"})).json()["items"]
    assert [r["action"] for r in records] == ["borrower.registered"]
    assert records[0]["changes"]["id_number_masked"] == person["id_number_masked"]
    assert records[0]["region_code"] == "2301"
    everything = json.dumps((await admin.get("/audit", {"limit": 500})).json())
    assert number not in everything
    assert resident_id("19700101", female=False, seq="05") not in everything
    assert guarantor["id_number_masked"] in everything


async def test_guarantors(world: World) -> None:
    window = await world.caller("window", region="2301")
    guarantor = await register_guarantor(window)
    assert guarantor["active_guarantees"] == 0
    assert guarantor["monthly_income"] == "6000.00" and guarantor["currency"] == "CNY"
    assert guarantor["id_number_masked"].startswith("230102********")
    response = await window.get(f"/guarantors/{guarantor['id']}")
    assert response.status_code == 200 and response.json()["id"] == guarantor["id"]

    other = await world.caller("window", region="2302")
    assert_problem(await other.get(f"/guarantors/{guarantor['id']}"), 404, "not_found")
    body = {
        "id_number": resident_id("19700101", female=False, seq="05"),
        "name": "Again",
        "employer": "Bureau",
        "employer_kind": "civil_service",
        "monthly_income": "5000",
    }
    problem = assert_problem(await other.post("/guarantors", body), 409, "duplicate")
    assert problem["id"] == guarantor["id"]
    assert (await other.get(f"/guarantors/{guarantor['id']}")).status_code == 200

    fresh = {**body, "id_number": resident_id("19710101", female=True, seq="07")}
    assert_problem(
        await window.post("/guarantors", {**fresh, "employer_kind": "army"}), 422, "validation_error"
    )
    assert_problem(
        await window.post("/guarantors", {**fresh, "monthly_income": "0"}), 422, "validation_error"
    )
    assert_problem(
        await window.post("/guarantors", {**fresh, "monthly_income": 5000}), 422, "validation_error"
    )
    assert_problem(await window.post("/guarantors", {**fresh, "id_number": "123"}), 422, "invalid_id_number")
    bank = await world.caller("bank", bank="ICBC")
    assert_problem(await bank.get(f"/guarantors/{guarantor['id']}"), 404, "not_found")
    assert TODAY
