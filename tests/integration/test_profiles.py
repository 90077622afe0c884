"""Profiles and patron rules end to end (issue 3): three realistic profiles
run through a real cluster and checked record by record against the store
and line by line against the job summary — a students file matched on
District ID with value maps and skip rules, a staff file matched on barcode
+ site with user names and passwords, a file with delete and association
rules and patrons holding checkouts — plus profiles written the way
Destiny's PIC writes them, and `patronctl profile check`."""
import json
import os
import sqlite3
import subprocess

from harness import BIN, Cluster, dump_store, main, summary_key, test, workdir

# ---------------------------------------------------------------- helpers


def write_csv(path, rows, encoding="cp1252"):
    """Rows are lists of strings; written with CRLF and quoting as an SIS does."""
    import csv
    import io
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    with open(path, "w", encoding=encoding, newline="") as f:
        f.write(buf.getvalue())
    return path


def write_profile(path, text, crlf=False):
    text = text.strip("\n") + "\n"
    if crlf:
        text = text.replace("\n", "\r\n")
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    return path


def lines(summary):
    """The summary's lines as sorted (line, district_id, outcome, message)."""
    return sorted((e["line"], e["district_id"], e["outcome"], e["message"]) for e in summary["exceptions"])


def expect_lines(summary, want):
    got = lines(summary)
    want = sorted(want)
    if got != want:
        missing = [w for w in want if w not in got]
        extra = [g for g in got if g not in want]
        raise AssertionError(f"summary lines differ\n  missing: {missing}\n  unexpected: {extra}")


COUNT_NAMES = ["read", "added", "added_with_warnings", "updated", "updated_with_warnings", "unchanged",
               "deleted", "deleted_with_warnings", "inactivated", "transferred", "skipped_by_rule",
               "invalid_skipped", "duplicates_superseded"]


def expect_counts(summary, **want):
    full = {k: 0 for k in COUNT_NAMES}
    full.update(want)
    assert summary["counts"] == full, f"counts {summary['counts']}\n  expected {full}"


def patrons(cluster):
    con = cluster.db()
    con.row_factory = lambda c, row: {d[0]: v for d, v in zip(c.description, row)}
    rows = {r["district_id"] or r["barcode"]: r for r in con.execute("SELECT * FROM patrons")}
    con.close()
    return rows


def expect_store(cluster, want):
    """want: {key: {column: value}} for every patron that must be there, and no others."""
    got = patrons(cluster)
    assert set(got) == set(want), f"patrons differ: missing {set(want) - set(got)}, unexpected {set(got) - set(want)}"
    bad = [(k, col, got[k][col], v) for k, rec in want.items() for col, v in rec.items() if got[k][col] != v]
    assert not bad, "fields differ (patron, column, stored, expected):\n  " + "\n  ".join(map(repr, bad))
    return got


def query(cluster, sql, *args):
    con = cluster.db()
    rows = con.execute(sql, args).fetchall()
    con.close()
    return rows


def execute(cluster, sql, *args):
    con = cluster.db()
    con.execute(sql, args)
    con.commit()
    con.close()


def setup_sites(c):
    c.ctl("site", "add", "LHS", "Lincoln High School", "--media", "--access-level", "Secondary Student")
    c.ctl("site", "add", "LMS", "Lincoln Middle School", "--media", "--access-level", "Secondary Student")
    c.ctl("site", "add", "DO", "District Office", "--access-level", "Staff")   # not a media site


# ---------------------------------------------------------------- 1. students on District ID

STUDENTS_PROFILE = """
#------------------------------------------------------------
# PatronImportConverter configuration file (machine generated)
#------------------------------------------------------------
#COMMENTS_BEGIN
# Students, nightly from the SIS
#COMMENTS_END
SiteShortNameDefault=
CsvTextEncoding=windows-1252
MatchUsingDistrictID=true
InputRowsToSkip=1
SkipMode=or
SkipWhen_1=field_districtID,
SkipWhen_2={9},Withdrawn
SkipMax=10
field_districtID={1}
field_barcode={2}
field_lastName={3}
field_firstName={4,omit}
field_siteShortName={5,map_site}
field_gradeLevel={6,omit}
field_patronType={6,map_type}
field_gender={7,map_gender}
field_birthdate={8,omit}
field_status={9}
field_homeroom={10,omit}
field_graduationYear={11,omit}
field_accessLevel={12}
field_nickname={13,upper,omit}
field_username={14,omit}
field_emailPrimary=ISEMPTY({14},{1})@students.example.org
map_site_101=LHS
map_site_102=LMS
map_site_103=DO
map_type_09=Student/HS
map_type_10=Student/HS
map_type_06=Student/MS
map_type_-1=Pre-K
map_type_default=Student
map_gender_M=M
map_gender_F=F
map_gender_X=X
field_type_total=14
field_type_8=date,MM/dd/yyyy
"""

HEADER = ["district_id", "barcode", "last", "first", "school", "grade", "gender", "birthdate", "status",
          "homeroom", "grad_year", "access_level", "nickname", "username"]
LONG_LAST = "Hernandez-Gonzalez-Featherstonehaugh-Worthington"
LONG_ID = "12345678901234567890123456789012345678901"

STUDENTS_DAY1 = [
    HEADER,
    ["1001", "B1001", "Adams", "Emma", "101", "09", "F", "10/04/2009", "A", "Room 12", "2027", "Secondary Student", "em", "eadams"],
    ["1002", "B1002", "Brown", "Liam", "101", "10", "X", "01/02/2008", "", "Room 12", "2026", "Secondary Student", "", ""],
    ["", "B1003", "Clark", "Ava", "101", "09", "F", "", "A", "", "", "Secondary Student", "", ""],
    ["1004", "B1004", "Davis", "Noah", "101", "09", "M", "", "Withdrawn", "", "", "", "", ""],
    ["1005", "B1005", "Evans", "Mia", "999", "09", "F", "", "A", "", "", "Secondary Student", "", ""],
    ["1006", "B1006", "", "Zoe", "101", "09", "F", "", "A", "", "", "Secondary Student", "", ""],
    ["1007", "", "Ford", "Eli", "101", "09", "M", "", "A", "", "", "Secondary Student", "", ""],
    ["1008", "B1008", "Green", "Ivy", "102", "06", "F", "13/45/2009", "A", "Room 12", "2030", "Secondary Student", "", ""],
    ["1009", "B1009", LONG_LAST, "Max", "101", "10", "M", "03/03/2008", "A", "", "20x7", "Secondary Student", "", ""],
    ["1010", "B1010", "Irwin", "Kai", "101", "-1", "M", "", "A", "", "", "", "", ""],
    ["1011", "B1011", "Smith", "Jo", "101", "09", "F", "", "A", "", "", "Secondary Student", "", "jsmith"],
    ["1012", "B1012", "Smith", "Jay", "101", "09", "M", "", "A", "", "", "Secondary Student", "", "JSmith"],
    [LONG_ID, "B1013", "Long", "Id", "101", "09", "F", "", "A", "", "", "", "", ""],
    ["1014", "B1014", "Jones", "Ann", "101", "09", "F", "", "A", "", "", "Secondary Student", "", ""],
    ["1014", "B1015", "Jones", "Anne", "101", "09", "F", "", "A", "", "", "Secondary Student", "", ""],
    ["1016", "B1016", "King", "Lu", "101", "09", "", "", "I", "", "", "Librarian", "", ""],
    ["1017", "B1017", "Lopez", "Rio", "103", "09", "M", "", "A", "", "", "Staff", "", ""],
]

STUDENTS_DAY1_LINES = [
    (2, "1001", "INFO", "Patron Type was unknown; new patron type of Student/HS created."),
    (2, "1001", "INFO", "Created homeroom: Room 12"),
    (3, "1002", "DEFAULT", "Gender was blank or invalid; set to Unspecified."),
    (3, "1002", "DEFAULT", "Status was blank or unknown; set to Active."),
    (6, "1005", "SKIP", "Site short name '999' does not exist."),
    (7, "1006", "SKIP", "Last name is required for all patrons; Last name was blank; ignored."),
    (8, "1007", "SKIP", "Barcode is required for all patrons; Barcode was blank; ignored."),
    (9, "1008", "KEEP", "Birth Date invalid; field left untouched."),
    (9, "1008", "INFO", "Patron Type was unknown; new patron type of Student/MS created."),
    (9, "1008", "INFO", "Created homeroom: Room 12"),
    (10, "1009", "BLANK", "Graduation Year invalid; field left blank."),
    (10, "1009", "TRUNC", "Last Name too long; shortened to fit."),
    (11, "1010", "DEFAULT", "Access level was not specified; using the default."),
    (11, "1010", "INFO", "Patron Type was unknown; new patron type of Pre-K created."),
    (13, "1012", "KEEP", "Duplicates another patron's user name 'JSmith'."),
    (14, LONG_ID, "SKIP", f"Unable to match using District ID; District ID '{LONG_ID}' exceeds maximum length of 40 characters."),
    (15, "1014", "SKIP", "District ID '1014' appears again on line 16; this line was superseded."),
    (17, "1016", "DEFAULT", "Gender was blank or invalid; set to Unspecified."),
    (17, "1016", "DEFAULT", "Access level (Librarian) was unknown; using the default."),
]


def student(did, bc, last, first, site, grade, ptype, gender, status, **kw):
    rec = {"district_id": did, "barcode": bc, "last_name": last, "first_name": first, "site_short_name": site,
           "grade_level": grade, "patron_type": ptype, "gender": gender, "status": status,
           "access_level": "Secondary Student", "birthdate": "", "homeroom": "", "graduation_year": "",
           "nickname": "", "username": "", "email_primary": f"{did}@students.example.org", "password_hash": ""}
    rec.update(kw)
    return rec


STUDENTS_DAY1_STORE = {
    "1001": student("1001", "B1001", "Adams", "Emma", "LHS", "09", "Student/HS", "F", "A", birthdate="2009-10-04",
                    homeroom="Room 12", graduation_year="2027", nickname="EM", username="eadams",
                    email_primary="eadams@students.example.org"),
    "1002": student("1002", "B1002", "Brown", "Liam", "LHS", "10", "Student/HS", "U", "A", birthdate="2008-01-02",
                    homeroom="Room 12", graduation_year="2026"),
    "1008": student("1008", "B1008", "Green", "Ivy", "LMS", "06", "Student/MS", "F", "A", homeroom="Room 12",
                    graduation_year="2030"),
    "1009": student("1009", "B1009", LONG_LAST[:42], "Max", "LHS", "10", "Student/HS", "M", "A",
                    birthdate="2008-03-03"),
    "1010": student("1010", "B1010", "Irwin", "Kai", "LHS", "-1", "Pre-K", "M", "A"),
    "1011": student("1011", "B1011", "Smith", "Jo", "LHS", "09", "Student/HS", "F", "A", username="jsmith",
                    email_primary="jsmith@students.example.org"),
    "1012": student("1012", "B1012", "Smith", "Jay", "LHS", "09", "Student/HS", "M", "A", username="",
                    email_primary="JSmith@students.example.org"),
    "1014": student("1014", "B1015", "Jones", "Anne", "LHS", "09", "Student/HS", "F", "A"),
    "1016": student("1016", "B1016", "King", "Lu", "LHS", "09", "Student/HS", "U", "I"),
    "1017": student("1017", "B1017", "Lopez", "Rio", "DO", "09", "Student/HS", "M", "A", access_level="Staff"),
}

STUDENTS_DAY2 = [
    HEADER,
    ["1001", "B1001", "", "Emma", "101", "09", "F", "10/04/2009", "A", "Room 14", "2027", "Secondary Student", "em", "eadams"],
    ["1002", "", "Brown", "Liam", "101", "10", "U", "01/02/2008", "A", "Room 12", "2026", "Secondary Student", "", ""],
    ["1008", "B1008", "Green", "Ivy", "102", "06", "F", "13/45/2009", "A", "Room 12", "2030", "Secondary Student", "", ""],
    ["1009", "B1009", LONG_LAST, "Max", "102", "10", "M", "03/03/2008", "A", "", "2027", "Secondary Student", "", ""],
    ["1010", "B1010", "Irwin", "Kai", "103", "-1", "M", "", "A", "", "", "", "", ""],
    ["1011", "B1017", "Smith", "Jo", "101", "09", "F", "", "A", "", "", "Secondary Student", "", "jsmith"],
    ["1012", "B1012", "Smith", "Jay", "101", "09", "M", "", "A", "", "", "Secondary Student", "", "jsmith"],
    ["1020", "B1002", "New", "Kid", "101", "09", "F", "", "A", "", "", "Secondary Student", "", ""],
    ["1016", "B1016", "King", "Lu", "101", "09", "F", "", "A", "", "", "Secondary Student", "", ""],
    ["1014", "B1015", "Jones", "Anne", "101", "09", "F", "", "A", "", "", "Secondary Student", "", ""],
    ["1021", "B1021", "Ortiz", "Lia", "102", "06", "F", "", "", "Room 9", "", "Secondary Student", "", ""],
]

STUDENTS_DAY2_LINES = [
    (2, "1001", "KEEP", "Last name is required for all patrons; Last name was missing."),
    (2, "1001", "INFO", "Created homeroom: Room 14"),
    (3, "1002", "KEEP", "Barcode is required for all patrons; Barcode was blank."),
    (4, "1008", "KEEP", "Birth Date invalid; field left untouched."),
    (5, "1009", "TRUNC", "Last Name too long; shortened to fit."),
    (5, "1009", "INFO", "Patron was also moved from site 'LHS'"),
    (6, "1010", "SKIP", "Unable to transfer patron between media sites / non-media sites."),
    (7, "1011", "SKIP", "Patron's new barcode 'B1017' is already assigned to another patron."),
    (8, "1012", "KEEP", "Duplicates another patron's user name 'jsmith'."),
    (9, "1020", "SKIP", 'Barcode "B1002" already exists at target site.'),
    (12, "1021", "DEFAULT", "Status was blank or unknown; set to Active."),
    (12, "1021", "INFO", "Created homeroom: Room 9"),
]


def students_setup(c, d):
    setup_sites(c)
    c.ctl("ref", "add", "access-level", "Secondary Student", "Elementary Student", "Staff")
    prof = write_profile(os.path.join(d, "students.properties"), STUDENTS_PROFILE)
    day1 = write_csv(os.path.join(d, "students-day1.csv"), STUDENTS_DAY1)
    day2 = write_csv(os.path.join(d, "students-day2.csv"), STUDENTS_DAY2)
    return prof, day1, day2


@test
def students_on_district_id_with_maps_and_skip_rules():
    d = workdir("profiles-students-files")
    with Cluster("profiles-students", workers=3) as c:
        prof, day1, day2 = students_setup(c, d)
        s1 = c.run(day1, prof, "--shard-size", "4")
        assert s1["state"] == "complete", s1
        expect_counts(s1, read=17, added=10, added_with_warnings=6, skipped_by_rule=2, invalid_skipped=4,
                      duplicates_superseded=1)
        expect_lines(s1, STUDENTS_DAY1_LINES)
        names = {(e["line"], e["message"]): e["name"] for e in s1["exceptions"]}
        assert names[(7, "Last name is required for all patrons; Last name was blank; ignored.")] == "Zoe"
        assert names[(3, "Gender was blank or invalid; set to Unspecified.")] == "Brown, Liam"
        expect_store(c, STUDENTS_DAY1_STORE)
        assert sorted(query(c, "SELECT name FROM patron_types")) == [("Pre-K",), ("Student/HS",), ("Student/MS",)]
        assert sorted(query(c, "SELECT site_short_name, name FROM homerooms")) == [("LHS", "Room 12"), ("LMS", "Room 12")]
        assert query(c, "SELECT DISTINCT created_job FROM patron_types") == [(s1["job_id"],)]

        # The same file again: nothing changes, the warnings are given again,
        # nothing is created twice.
        again = c.run(day1, prof)
        expect_counts(again, read=17, unchanged=10, skipped_by_rule=2, invalid_skipped=4, duplicates_superseded=1)
        assert not any(e["outcome"] == "INFO" for e in again["exceptions"]), again["exceptions"]
        assert (13, "1012", "KEEP", "Duplicates another patron's user name 'JSmith'.") in lines(again)

        # The next day: updates, with their own messages.
        before = patrons(c)
        s2 = c.run(day2, prof, "--shard-size", "5")
        expect_counts(s2, read=11, added=1, added_with_warnings=1, updated=4, updated_with_warnings=3, transferred=1,
                      unchanged=3, invalid_skipped=3)
        expect_lines(s2, STUDENTS_DAY2_LINES)
        want = {k: dict(v) for k, v in STUDENTS_DAY1_STORE.items()}
        want["1001"]["homeroom"] = "Room 14"
        want["1009"].update(site_short_name="LMS", graduation_year="2027")
        want["1012"]["email_primary"] = "jsmith@students.example.org"
        want["1016"].update(gender="F", status="A")
        want["1021"] = student("1021", "B1021", "Ortiz", "Lia", "LMS", "06", "Student/MS", "F", "A", homeroom="Room 9")
        after = expect_store(c, want)
        for did in ("1002", "1008", "1010", "1011", "1014", "1017"):   # refused or unchanged: not rewritten
            assert after[did]["updated_job"] == before[did]["updated_job"], did
        for did in ("1001", "1009", "1012", "1016"):
            assert after[did]["updated_job"] == s2["job_id"], did
        assert ("LMS", "Room 9") in query(c, "SELECT site_short_name, name FROM homerooms")


@test
def students_same_result_for_any_shards():
    """Types, homerooms and user names decided by line order come out the
    same whatever the shard size and number of workers."""
    results = []
    for workers, shard in ((1, 100), (3, 1), (2, 3)):
        d = workdir(f"profiles-det-{workers}-{shard}-files")
        with Cluster(f"profiles-det-{workers}-{shard}", workers=workers) as c:
            prof, day1, day2 = students_setup(c, d)
            s1 = c.run(day1, prof, "--shard-size", shard)
            s2 = c.run(day2, prof, "--shard-size", shard)
            dump = c.dump()
            refs = (sorted(query(c, "SELECT name FROM patron_types")),
                    sorted(query(c, "SELECT site_short_name, name FROM homerooms")))
            results.append(((workers, shard), dump, summary_key(s1), summary_key(s2), refs))
    first = results[0]
    expect_lines({"exceptions": [dict(zip(("line", "district_id", "outcome", "message"), x))
                                 for x in first[2][2]]}, STUDENTS_DAY1_LINES)
    for r in results[1:]:
        assert r[1] == first[1], f"store differs between {first[0]} and {r[0]}"
        assert r[2] == first[2], f"day 1 summary differs between {first[0]} and {r[0]}"
        assert r[3] == first[3], f"day 2 summary differs between {first[0]} and {r[0]}"
        assert r[4] == first[4], f"reference data differs between {first[0]} and {r[0]}"


# ---------------------------------------------------------------- 2. staff on barcode + site

STAFF_PROFILE = """
SiteShortNameDefault=
CsvTextEncoding=UTF-8
MatchUsingDistrictID=false
InputRowsToSkip=1
field_barcode={1}
field_siteShortName={2}
field_districtID={3,omit}
field_lastName={4}
field_firstName={5}
field_patronType=Staff
field_accessLevel={6}
field_isTeacher={7}
field_username={8,omit}
field_password={9,omit}
field_resourceGroup={10}
field_cardExpires={11,omit}
field_type_total=11
field_type_11=date,yyyy-MM-dd
"""

STAFF_HEADER = ["barcode", "site", "employee_id", "last", "first", "access", "teacher", "username", "password",
                "resource_group", "card_expires"]
STAFF_DAY1 = [
    STAFF_HEADER,
    ["T100", "LHS", "E100", "Lee", "Ann", "Teacher", "True", "alee", "pw-one-Ä", "Faculty Group", "2026-06-30"],
    ["T101", "DO", "E101", "Kim", "Bo", "", "Y", "bkim", "pw-two", "", "2026-06-30"],
    ["T102", "LHS", "", "Park", "Cy", "Staff", "maybe", "", "", "Band", "2026-13-01"],
    ["", "LHS", "E103", "Quinn", "Di", "Staff", "N", "", "", "", ""],
    ["T104", "", "E104", "Reed", "Ed", "Staff", "N", "", "", "", ""],
    ["", "", "E105", "Shaw", "Fay", "Staff", "N", "", "", "", ""],
    ["T105", "LHS", "E106", "Todd", "Gus", "Staff", "F", "ALEE", "pw-three", "Staff Group", ""],
    ["T106", "NOPE", "E107", "Uhl", "Hal", "Staff", "F", "", "", "", ""],
]
STAFF_DAY1_LINES = [
    (3, "E101", "DEFAULT", "Access level was not specified; using the default."),
    (3, "E101", "DEFAULT", "Resource Group was not specified; using the default."),
    (4, "", "KEEP", "Card Expiration invalid; field left untouched."),
    (4, "", "KEEP", 'Invalid Teaching Status. Expecting "True" or "False". Teaching status was not changed.'),
    (4, "", "DEFAULT", "Resource Group (Band) was unknown; using the default."),
    (5, "E103", "SKIP", "No barcode match criteria specified."),
    (6, "E104", "SKIP", "No site short name match criteria specified."),
    (7, "E105", "SKIP", "No match criteria specified."),
    (8, "E106", "KEEP", "Duplicates another patron's user name 'ALEE'."),
    (9, "E107", "SKIP", "Site short name 'NOPE' does not exist."),
]
STAFF_DAY2 = [
    STAFF_HEADER,
    ["T100", "LHS", "E100", "Lee", "Ann", "Teacher", "True", "alee", "pw-one-Ä", "Faculty Group", "2026-06-30"],
    ["T101", "DO", "E101", "Kim", "Bo", "Staff", "Y", "bkim", "pw-two-b", "Staff Group", "2026-06-30"],
    ["T102", "LMS", "", "Park", "Cy", "Staff", "F", "", "", "Staff Group", ""],
    ["T105", "LHS", "E106", "", "Gus", "Staff", "T", "", "", "Staff Group", ""],
    ["T107", "LHS", "E100", "Vance", "Ida", "Staff", "F", "", "", "Staff Group", ""],
    ["T108", "LHS", "E108", "Wong", "Jo", "Staff", "F", "bkim", "", "Staff Group", ""],
]
STAFF_DAY2_LINES = [
    (4, "", "SKIP", 'Barcode "T102" already exists at target site.'),
    (5, "E106", "KEEP", "Last name is required for all patrons; Last name was missing."),
    (6, "E100", "SKIP", "District ID 'E100' is already assigned to another patron."),
    (7, "E108", "KEEP", "Duplicates another patron's user name 'bkim'."),
]
PASSWORDS = ["pw-one-Ä", "pw-two", "pw-three", "pw-two-b"]


def staff_member(bc, site, did, last, first, access, teacher, username, group, card=""):
    return {"barcode": bc, "site_short_name": site, "district_id": did, "last_name": last, "first_name": first,
            "patron_type": "Staff", "access_level": access, "is_teacher": teacher, "username": username,
            "resource_group": group, "card_expires": card, "status": "A", "gender": "U"}


def no_plaintext_anywhere(c, texts):
    """The passwords appear in no file under the data folder (store, WAL, staged plans, logs)."""
    needles = [t.encode("utf-8") for t in texts]
    for root, _, files in os.walk(c.data):
        for name in files:
            path = os.path.join(root, name)
            parts = path.split(os.sep)
            if {"import", "work", "archive"} & set(parts):
                continue   # the CSV itself as the SIS wrote it (its upload, UTF-8 copy and archived copy)
            try:
                data = open(path, "rb").read()
            except OSError:
                continue
            for n in needles:
                assert n not in data, f"a plaintext password is in {path}"


@test
def staff_on_barcode_and_site_with_user_names_and_passwords():
    d = workdir("profiles-staff-files")
    with Cluster("profiles-staff", workers=2) as c:
        setup_sites(c)
        c.ctl("ref", "add", "patron-type", "Staff")
        c.ctl("ref", "add", "resource-group", "Faculty Group", "Staff Group")
        c.ctl("ref", "add", "resource-group", "staff group", "--default")
        refs = json.loads(c.ctl("ref", "list", "--json").stdout)
        assert refs["resource-group"] == {"names": ["Faculty Group", "Staff Group"], "default": "Staff Group"}, refs
        assert refs["site_access_levels"]["DO"] == "Staff", refs
        prof = write_profile(os.path.join(d, "staff.properties"), STAFF_PROFILE)
        day1 = write_csv(os.path.join(d, "staff-day1.csv"), STAFF_DAY1, encoding="utf-8")
        s1 = c.run(day1, prof)
        expect_counts(s1, read=8, added=4, added_with_warnings=3, invalid_skipped=4)
        expect_lines(s1, STAFF_DAY1_LINES)
        want = {
            "E100": staff_member("T100", "LHS", "E100", "Lee", "Ann", "Teacher", "T", "alee", "Faculty Group",
                                 "2026-06-30"),
            "E101": staff_member("T101", "DO", "E101", "Kim", "Bo", "Staff", "T", "bkim", "Staff Group", "2026-06-30"),
            "T102": staff_member("T102", "LHS", "", "Park", "Cy", "Staff", "", "", "Staff Group"),
            "E106": staff_member("T105", "LHS", "E106", "Todd", "Gus", "Staff", "F", "", "Staff Group"),
        }
        got = expect_store(c, want)
        for k in ("E100", "E101", "E106"):
            assert got[k]["password_hash"].startswith("$argon2id$"), got[k]["password_hash"]
        assert got["T102"]["password_hash"] == ""
        hashes = {k: got[k]["password_hash"] for k in got}

        day2 = write_csv(os.path.join(d, "staff-day2.csv"), STAFF_DAY2, encoding="utf-8")
        s2 = c.run(day2, prof)
        expect_counts(s2, read=6, unchanged=1, updated=2, updated_with_warnings=1, added=1, added_with_warnings=1,
                      invalid_skipped=2)
        expect_lines(s2, STAFF_DAY2_LINES)
        want["E106"]["is_teacher"] = "T"
        want["E108"] = staff_member("T108", "LHS", "E108", "Wong", "Jo", "Staff", "F", "", "Staff Group")
        got = expect_store(c, want)
        # The same password is not hashed again (the record is unchanged);
        # a new one gets a new hash.
        assert got["E100"]["password_hash"] == hashes["E100"]
        assert got["E101"]["password_hash"] != hashes["E101"] and got["E101"]["password_hash"].startswith("$argon2id$")
        assert got["E106"]["password_hash"] == hashes["E106"]
        # Never printed, never stored in the clear.
        shown = c.ctl("patron", "show", "E100", "--json").stdout
        assert "password" not in json.loads(shown) and "argon2" not in shown
        text = json.dumps(s1) + json.dumps(s2) + c.ctl("job", "show", s2["job_id"]).stdout
        assert not any(p in text for p in PASSWORDS)
        no_plaintext_anywhere(c, PASSWORDS)


# ---------------------------------------------------------------- 3. delete rules, checkouts, associations

DELETES_PROFILE = """
CsvTextEncoding=UTF-8
MatchUsingDistrictID=true
InputRowsToSkip=1
DeleteMode=or
DeleteWhen_1=field_status,Inactive
DeleteWhen_2={8},Delete
DeleteMax=5
UpdateBeforeDelete={ubd}
AssociationMode=or
AssociationWhen_1=field_patronType,Faculty
AssociationMax=3
field_districtID={1}
field_barcode={2}
field_lastName={3}
field_firstName={4}
field_siteShortName={5}
field_patronType={6}
field_status={7}
field_type_total=8
"""
DEL_HEADER = ["id", "barcode", "last", "first", "site", "type", "status", "action"]


def person(did, last, first, site, ptype, status="A"):
    return {"district_id": did, "barcode": "B" + did, "last_name": last, "first_name": first,
            "site_short_name": site, "patron_type": ptype, "status": status}


@test
def delete_rules_checkouts_and_associations():
    d = workdir("profiles-deletes-files")
    with Cluster("profiles-deletes", workers=2) as c:
        setup_sites(c)
        c.ctl("ref", "add", "patron-type", "Student", "Faculty")
        prof = write_profile(os.path.join(d, "deletes.properties"), DELETES_PROFILE.replace("{ubd}", "true"))
        prof_no_update = write_profile(os.path.join(d, "deletes-noupdate.properties"),
                                       DELETES_PROFILE.replace("{ubd}", "false"))
        load = write_csv(os.path.join(d, "load.csv"), [
            DEL_HEADER,
            ["S1", "BS1", "Able", "Al", "LHS", "Student", "Active", ""],
            ["S2", "BS2", "Baker", "Bea", "LHS", "Student", "Active", ""],
            ["S3", "BS3", "Cole", "Cy", "LHS", "Student", "Active", ""],
            ["S5", "BS5", "Diaz", "Dee", "LHS", "Student", "Active", ""],
            ["F1", "BF1", "Ellis", "Ed", "LHS", "Faculty", "Active", ""],
            ["F2", "BF2", "Fox", "Flo", "LMS", "Faculty", "Active", ""],
        ])
        s0 = c.run(load, prof, "--no-thresholds")
        expect_counts(s0, read=6, added=6)
        expect_lines(s0, [])
        # Circulation: S2 has books out, S3 owes a fine.
        execute(c, "UPDATE patrons SET checkouts=3 WHERE district_id='S2'")
        execute(c, "UPDATE patrons SET fines_cents=250 WHERE district_id='S3'")

        day = write_csv(os.path.join(d, "day.csv"), [
            DEL_HEADER,
            ["S1", "BS1", "Able", "Al", "LHS", "Student", "Inactive", ""],
            ["S2", "BS2", "Baker", "Beatrice", "LHS", "Student", "Inactive", ""],
            ["S3", "BS3", "Cole", "Cy", "LHS", "Student", "Active", "Delete"],
            ["S4", "BS4", "Gone", "Gil", "LHS", "Student", "Inactive", ""],
            ["F1", "BF1", "Ellis", "Ed", "LMS", "Faculty", "Active", ""],
            ["F2", "BF2", "Fox", "Flo", "LMS", "Faculty", "Active", ""],
            ["F3", "BF3", "Gray", "Gia", "LMS", "Faculty", "Active", ""],
            ["S5", "BS5", "Diaz", "Dee", "LMS", "Student", "Active", ""],
        ])
        s1 = c.run(day, prof, "--no-thresholds")
        expect_counts(s1, read=8, deleted=1, updated=3, updated_with_warnings=1, transferred=1, unchanged=2, added=1,
                      invalid_skipped=1)
        expect_lines(s1, [
            (3, "S2", "SKIP", "Unable to delete patron (S2); patron has outstanding transactions."),
            (4, "S3", "SKIP", "Unable to delete patron (S3); patron has outstanding transactions."),
            (5, "S4", "SKIP", "Unable to delete patron; patron not found."),
            (6, "F1", "INFO", "Patron was associated with site 'LMS'."),
            (9, "S5", "INFO", "Patron was also moved from site 'LHS'"),
        ])
        want = {
            # S1 deleted; S2 kept, and updated first (UpdateBeforeDelete=true)
            "S2": dict(person("S2", "Baker", "Beatrice", "LHS", "Student", "I"), checkouts=3),
            "S3": dict(person("S3", "Cole", "Cy", "LHS", "Student"), fines_cents=250),
            "S5": person("S5", "Diaz", "Dee", "LMS", "Student"),
            "F1": person("F1", "Ellis", "Ed", "LHS", "Faculty"),     # stays at LHS, associated with LMS
            "F2": person("F2", "Fox", "Flo", "LMS", "Faculty"),
            "F3": person("F3", "Gray", "Gia", "LMS", "Faculty"),
        }
        expect_store(c, want)
        assert query(c, "SELECT p.district_id, s.site_short_name FROM patron_sites s JOIN patrons p "
                        "ON p.id = s.patron_id") == [("F1", "LMS")]
        ops = query(c, "SELECT op, count(*) FROM job_changes WHERE job_id=? GROUP BY op ORDER BY op", s1["job_id"])
        assert ops == [(1, 1), (2, 2), (3, 1), (4, 1)], ops      # before-images of every change

        # UpdateBeforeDelete=false: a refused delete changes nothing.
        again = write_csv(os.path.join(d, "again.csv"), [
            DEL_HEADER,
            ["S2", "BS2", "Baker", "Bea", "LHS", "Student", "Inactive", ""],
            ["F1", "BF1", "Ellis", "Ed", "LMS", "Faculty", "Active", ""],
        ])
        s2 = c.run(again, prof_no_update, "--no-thresholds")
        expect_counts(s2, read=2, invalid_skipped=1, unchanged=1)
        expect_lines(s2, [(2, "S2", "SKIP", "Unable to delete patron (S2); patron has outstanding transactions.")])
        expect_store(c, want)

        # The schedule allows deleting patrons with outstanding transactions:
        # a dry run first shows it and changes nothing, then the run does it.
        final = write_csv(os.path.join(d, "final.csv"), [
            DEL_HEADER,
            ["S2", "BS2", "Baker", "Bea", "LHS", "Student", "Inactive", ""],
            ["S3", "BS3", "Cole", "Cy", "LHS", "Student", "Active", "Delete"],
            ["F1", "BF1", "Ellis", "Ed", "LHS", "Faculty", "Active", "Delete"],
        ])
        final_lines = [
            (2, "S2", "INFO", "Patron (S2) deleted with outstanding transactions (3 checkouts, fines 0.00); "
                              "the schedule allows it."),
            (3, "S3", "INFO", "Patron (S3) deleted with outstanding transactions (0 checkouts, fines 2.50); "
                              "the schedule allows it."),
        ]
        dry = c.run(final, prof_no_update, "--no-thresholds", "--allow-delete-outstanding", "--dry-run")
        expect_counts(dry, read=3, deleted=3, deleted_with_warnings=2)
        expect_lines(dry, final_lines)
        expect_store(c, want)
        s3 = c.run(final, prof_no_update, "--no-thresholds", "--allow-delete-outstanding")
        expect_counts(s3, read=3, deleted=3, deleted_with_warnings=2)
        expect_lines(s3, final_lines)
        for k in ("S2", "S3", "F1"):
            del want[k]
        expect_store(c, want)
        assert query(c, "SELECT count(*) FROM patron_sites") == [(0,)]   # F1's association went with F1


# ---------------------------------------------------------------- Destiny-written profiles, profile check

DESTINY_PROFILE = """
#------------------------------------------------------------
# PatronImportConverter configuration file (machine generated)
#------------------------------------------------------------

#COMMENTS_BEGIN
Free text typed by the librarian, without a hash
# Updated 2019 for the new SIS
#COMMENTS_END

#SiteShortNameDefault=LHS
SiteShortNameDefault=
CsvTextEncoding=windows-1252   
MatchUsingDistrictID=true 
InputRowsToSkip=
InputRowsToSkip=1

SkipMode=
SkipWhen_1={1},
SkipMax=100

UpdateBeforeDelete=false
DeleteMode=or
DeleteMax=100

AssociationMode=and
AssociationMax=100

field_districtID={1}
field_barcode={2}
field_lastName={1}
field_lastName={3}
field_firstName={4,omit}
field_middleName=
field_siteShortName={5,map_siteShortName}
field_patronType={6,map_patronType}
field_cardexpires={7,omit}
field_assetGroup={8,omit}

map_siteShortName_101=LHS
map_siteshortname_default=LMS
map_patrontype_-1=Pre-K
map_patronType_12=Senior
map_patrontype_default=Student
map_gradeLevel_K=00
map_unused_x=y

field_type_total=8
field_type_1=string
field_type_2=string
field_type_3=string
field_type_4=string
field_type_5=string
field_type_6=string
field_type_7=date,M/d/yy
field_type_8=string
"""


@test
def destiny_written_profiles_load_and_run():
    d = workdir("profiles-destiny-files")
    assert "windows-1252   \n" in DESTINY_PROFILE      # generated files leave trailing blanks
    prof = write_profile(os.path.join(d, "destiny.properties"), DESTINY_PROFILE, crlf=True)
    with Cluster("profiles-destiny", workers=2) as c:
        setup_sites(c)
        p = c.ctl("profile", "check", prof)
        assert "the profile is valid" in p.stdout, p.stdout
        data = write_csv(os.path.join(d, "destiny.csv"), [
            ["id", "barcode", "last", "first", "school", "grade", "expires", "group"],
            ["2001", "C2001", "Núñez", "José", "101", "-1", "6/30/27", "Elementary"],
            ["2002", "C2002", "O'Brien", "", "102", "12", "", ""],
            ["", "C2003", "Nobody", "", "101", "12", "", ""],
            # skipped by its column rule before duplicates: its barcode never supersedes line 2's
            ["", "C2001", "Later", "", "101", "12", "", ""],
        ])
        s = c.run(data, prof)
        expect_counts(s, read=4, added=2, skipped_by_rule=2)
        assert s["counts"].get("duplicates_superseded", 0) == 0, s["counts"]
        got = expect_store(c, {
            "2001": {"last_name": "Núñez", "first_name": "José", "site_short_name": "LHS", "patron_type": "Pre-K",
                     "card_expires": "2027-06-30", "resource_group": "Elementary", "middle_name": ""},
            "2002": {"last_name": "O'Brien", "site_short_name": "LMS", "patron_type": "Senior", "card_expires": ""},
        })
        assert got["2001"]["access_level"] == "Secondary Student"   # LHS's default: the profile maps none


@test
def profile_check_reports_errors_and_maps_a_sample():
    d = workdir("profiles-check-files")
    ctl = os.path.join(BIN, "patronctl")
    bad = write_profile(os.path.join(d, "bad.properties"),
                        "MatchUsingDistrictID=true\nfield_districtID={1}\nfield_lastName={3,map_nope}\n")
    p = subprocess.run([ctl, "--data", os.path.join(d, "nodata"), "profile", "check", bad],
                       capture_output=True, text=True)
    assert p.returncode == 1, p
    assert f"{bad}:3: field_lastName={{3,map_nope}}: map 'nope' is not defined" in p.stderr, p.stderr
    unknown = write_profile(os.path.join(d, "unknown.properties"), "MatchUsingDistrictID=true\nFrobnicate=1\n")
    p = subprocess.run([ctl, "profile", "check", unknown], capture_output=True, text=True)
    assert p.returncode == 1 and f"{unknown}:2: Frobnicate=1" in p.stderr, p.stderr
    p = subprocess.run([ctl, "profile", "check"], capture_output=True, text=True)
    assert p.returncode == 2

    # Mapping only (no store), then with a store: what the rules would do.
    prof = write_profile(os.path.join(d, "students.properties"), STUDENTS_PROFILE)
    sample = write_csv(os.path.join(d, "sample.csv"), STUDENTS_DAY1[:4])
    p = subprocess.run([ctl, "--data", os.path.join(d, "nodata"), "profile", "check", prof, "--csv", sample,
                        "--records", "2"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "MatchUsingDistrictID   true (match on District ID)" in out, out
    assert "line 2:" in out and "line 3:" in out and "line 4:" not in out, out
    for field, value in (("lastName", "Adams"), ("birthdate", "2009-10-04"), ("patronType", "Student/HS"),
                         ("emailPrimary", "eadams@students.example.org"), ("nickname", "EM")):
        assert f"    {field:<36} {value}\n" in out, (field, out)
    assert "the patron rules are not applied" in out, out
    with Cluster("profiles-check", workers=1) as c:
        setup_sites(c)
        c.run(write_csv(os.path.join(d, "one.csv"), STUDENTS_DAY1[:2]), prof)
        p = c.ctl("profile", "check", prof, "--csv", sample)
        out = p.stdout
        assert "patron 1001 is stored: unchanged" in out, out
        assert "would add a patron, with warnings" in out, out
        assert "DEFAULT Gender was blank or invalid; set to Unspecified." in out, out
        assert "SkipWhen matches: skipped by rule" in out, out
        assert query(c, "SELECT count(*) FROM patrons") == [(1,)]   # nothing written


if __name__ == "__main__":
    main()
