def test_admin_creates_and_lists_a_clinic(admin):
    clinic = admin.make_clinic(name="Leeds", timezone="Europe/London")
    listed = admin.get("/v1/clinics").get_json()
    assert [c["id"] for c in listed["data"]] == [clinic["id"]]
    assert listed["next_cursor"] is None


def test_second_organization_sees_nothing(admin, other):
    clinic = admin.make_clinic()
    assert other.get(f"/v1/clinics/{clinic['id']}").status_code == 404
    assert other.get("/v1/clinics").get_json()["data"] == []
