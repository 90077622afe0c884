#!/usr/bin/env python3
"""gen_patrons.py - nightly SIS patron exports of a made-up school district.

What it makes. The district is Cottonwood Mesa Unified School District, a
made-up district in New Mexico with 50 sites, each with the school number
its student information system (SIS) uses: elementary, middle and high
schools, two K-8 schools, an early learning centre, alternative and online
programmes, and three offices that are not media sites. The export is the
file such an SIS writes every night for the library system: one row per
patron (students about 89 %, teachers and other staff the rest), grouped by
school and sorted by name within it, in the 22 columns of `COLUMNS`. The
names carry accents (é, ñ, ü, ç, ...), apostrophes (O'Brien), hyphens and
blanks (García-López, De la Cruz); fields hold commas ("Lucero, M."),
quotes (a nickname, Robert "Bobby") and, once in a few hundred rows, a line
break inside a quoted address. Line ends are CRLF unless --eol lf. Staff
District IDs start with "E"; every District ID and barcode is unique.

--mutate-from DAY1.csv writes the export of the next day instead: the same
patrons in the same order, a share of them changed (a move, a new homeroom,
a transfer to another school, a lost card, a married name, ...), some gone
and some new, each new one placed beside a patron of its school.
--sites-out writes the district's sites (short_name,name,media,school_number;
the input of `patronctl site import`), --profile-out a Destiny Patron Import
Converter (PIC) properties file that maps the export (docs/PROFILE.md),
declaring the file's encoding.

Why. patronsync's demo, its integration tests and its benchmark need files
shaped like what districts send, of any size (3,000 rows for the sample,
1,000,000 for the benchmark) and the same every time for a given seed.
The repository makes them itself, so a district's clone needs nothing from
outside it. Python 3 standard library only.

    # a first load, its sites, and a profile that maps it
    tools/gen_patrons.py --rows 3000 --seed 1 --encoding cp1252 \\
        --sites-out sites.csv --profile-out students.properties -o day1.csv
    # the next day's export: ~5 % changed, ~2 % gone, ~2 % new
    tools/gen_patrons.py --mutate-from day1.csv --seed 2 --encoding cp1252 -o day2.csv

Encodings: utf-8 (default), utf-8-sig (with a byte-order mark), cp1252
(windows-1252, as most districts' Windows servers write it: a letter the code
page lacks, such as the ễ of Nguyễn, is written as its base letter, e),
utf-16 (a byte-order mark, then little-endian). The output is the file
named by -o, or standard output.
"""
import argparse
import bisect
import codecs
import csv
import datetime
import random
import sys
import unicodedata

# ---------------------------------------------------------------- the export

# The columns of the export, in order. tests/ and bench/ read them by
# position; the profile maps column k+1 to the patron field beside it.
COLUMNS = [
    "district_id", "barcode", "last_name", "first_name", "middle_name", "nickname",
    "patron_type", "access_level", "site", "homeroom", "grade_level", "gender",
    "birthdate", "graduation_year", "card_expiration", "email", "phone",
    "address1", "city", "state", "zip", "user_defined_1",
]
(DID, BARCODE, LAST, FIRST, MIDDLE, NICK, PTYPE, ACCESS, SITE, HOMEROOM, GRADE, GENDER,
 BIRTH, GRADYEAR, EXPIRES, EMAIL, PHONE, ADDRESS, CITY, STATE, ZIP, UDF1) = range(len(COLUMNS))

PIC_FIELDS = {  # column -> (PIC field, options)
    DID: ("districtID", ""), BARCODE: ("barcode", "omit"), LAST: ("lastName", ""),
    FIRST: ("firstName", "omit"), MIDDLE: ("middleName", "omit"), NICK: ("nickname", "omit"),
    PTYPE: ("patronType", ""), ACCESS: ("accessLevel", "omit"), SITE: ("siteShortName", "map_site"),
    HOMEROOM: ("homeroom", "omit"), GRADE: ("gradeLevel", "omit"), GENDER: ("gender", "map_gender"),
    BIRTH: ("birthdate", "omit"), GRADYEAR: ("graduationYear", "omit"),
    EXPIRES: ("cardExpires", "omit"), EMAIL: ("emailPrimary", "omit"),
    PHONE: ("addressPrimaryPhoneNumberPrimary", "omit"), ADDRESS: ("addressPrimaryLine1", "omit"),
    CITY: ("addressPrimaryCity", "omit"), STATE: ("addressPrimaryState", "omit"),
    ZIP: ("addressPrimaryZipCode", "omit"), UDF1: ("userDefined1", "omit"),
}
DATE_FORMATS = {BIRTH: ("MM/dd/yyyy", "%m/%d/%Y"), EXPIRES: ("yyyy-MM-dd", "%Y-%m-%d")}

# ---------------------------------------------------------------- the district

DISTRICT = "Cottonwood Mesa Unified School District"
STAFF_DOMAIN = "cmusd.example.org"
STUDENT_DOMAIN = "students.cmusd.example.org"
LIBRARY_CODE = "0317"        # the district's prefix in every patron barcode
FALL = 2025                  # the school year 2025-26: ages, grades, class years

# kind -> (grades served, share of the district's patrons, media site)
KINDS = {
    "elementary": (["K", "01", "02", "03", "04", "05"], 1.0, True),
    "elementary+pk": (["PK", "K", "01", "02", "03", "04", "05"], 1.1, True),
    "middle": (["06", "07", "08"], 2.1, True),
    "high": (["09", "10", "11", "12"], 3.4, True),
    "k8": (["K", "01", "02", "03", "04", "05", "06", "07", "08"], 1.6, True),
    "early": (["PK"], 0.4, True),
    "alternative": (["09", "10", "11", "12"], 0.4, True),
    "online": (["06", "07", "08", "09", "10", "11", "12"], 0.8, True),
    "office": ([], 0.35, False),
}

# (school number, Destiny short name, name, kind): the SIS's numbering,
# elementary 1xx, middle 2xx, high 3xx, other programmes 4xx-6xx, offices 9xx.
SITES = [
    (111, "ALAMEDA", "Alameda Elementary", "elementary"),
    (112, "BOSQUEV", "Bosque Verde Elementary", "elementary+pk"),
    (113, "CANYONW", "Canyon Wren Elementary", "elementary"),
    (114, "DESERTW", "Desert Willow Elementary", "elementary"),
    (115, "EAGLEROCK", "Eagle Rock Elementary", "elementary"),
    (116, "HUERTA", "Huerta, Dolores Elementary", "elementary+pk"),
    (117, "JUNIPER", "Juniper Elementary", "elementary"),
    (118, "LAPALOMA", "La Paloma Elementary", "elementary"),
    (119, "LOSNINOS", "Los Niños Elementary", "elementary+pk"),
    (120, "LUCERO", "Lucero Elementary", "elementary"),
    (121, "MESALINDA", "Mesa Linda Elementary", "elementary"),
    (122, "MTNVIEW", "Mountain View Elementary", "elementary"),
    (123, "OKEEFFE", "O'Keeffe, Georgia Elementary", "elementary"),
    (124, "PINONHILLS", "Piñon Hills Elementary", "elementary"),
    (125, "QUAILRUN", "Quail Run Elementary", "elementary"),
    (126, "RIOGRANDE", "Río Grande Elementary", "elementary+pk"),
    (127, "ROADRUNNER", "Roadrunner Elementary", "elementary"),
    (128, "SANDIAV", "Sandia Vista Elementary", "elementary"),
    (129, "SANISIDRO", "San Isidro Elementary", "elementary"),
    (130, "STAINES", "Santa Inés Elementary", "elementary"),
    (131, "SUNFLOWER", "Sunflower Elementary", "elementary"),
    (132, "TAMARISK", "Tamarisk Elementary", "elementary"),
    (133, "VISTASOL", "Vista del Sol Elementary", "elementary"),
    (134, "WPINES", "Whispering Pines Elementary", "elementary"),
    (135, "YUCCA", "Yucca Flats Elementary", "elementary"),
    (136, "ZUNITRAIL", "Zuni Trail Elementary", "elementary"),
    (211, "ARROYOMS", "Arroyo Seco Middle School", "middle"),
    (212, "CMMS", "Cottonwood Mesa Middle School", "middle"),
    (213, "JEMEZMS", "Jemez Ridge Middle School", "middle"),
    (214, "LOMASMS", "Las Lomas Middle School", "middle"),
    (215, "MONTOYAMS", "Montoya, Ramón Middle School", "middle"),
    (216, "REDMESAMS", "Red Mesa Middle School", "middle"),
    (217, "SBLANCAMS", "Sierra Blanca Middle School", "middle"),
    (218, "TURQMS", "Turquoise Trail Middle School", "middle"),
    (311, "CMHS", "Cottonwood Mesa High School", "high"),
    (312, "EAGLEHS", "Eagle Ridge High School", "high"),
    (313, "CUEVAHS", "La Cueva Verde High School", "high"),
    (314, "MANZANOHS", "Manzano Peaks High School", "high"),
    (315, "RIOBRAVOHS", "Río Bravo High School", "high"),
    (316, "STANNEHS", "St. Anne's Early College High School", "high"),
    (317, "STAACAD", "Science, Technology & Arts Academy", "high"),
    (411, "ESCALK8", "Escalante K-8 Academy", "k8"),
    (412, "TAMARK8", "Tierra Amarilla Community School (K-8)", "k8"),
    (511, "SPROUTS", "Little Sprouts Early Learning Center", "early"),
    (611, "HORIZON", "Horizon Alternative High School", "alternative"),
    (612, "NEWDIR", "New Directions Learning Center", "alternative"),
    (613, "CMVA", "Cottonwood Mesa Virtual Academy", "online"),
    (901, "DISTOFF", "District Office", "office"),
    (902, "TRANSPORT", "Transportation & Fleet Services", "office"),
    (903, "FACILITIES", "Facilities, Maintenance & Grounds", "office"),
]
SITE_BY_NUMBER = {str(n): s for s in SITES for n in [s[0]]}
SITE_BY_NAME = {s[2]: s for s in SITES}

# (city, state, ZIP, weight): most families live in the district's towns.
CITIES = [
    ("Cottonwood Mesa", "NM", "87120", 38), ("Los Piñones", "NM", "87124", 14),
    ("Eagle Rock", "NM", "87113", 12), ("Santa Inés", "NM", "87048", 9),
    ("Mesa Linda", "NM", "87031", 9), ("Arroyo Seco", "NM", "87122", 7),
    ("Peña Blanca Springs", "NM", "87041", 5), ("Corrales del Norte", "NM", "87114", 4),
    ("Durango", "CO", "81301", 1), ("El Paso", "TX", "79912", 1),
]
STREETS = [  # (name, may take a suffix)
    ("Cottonwood", True), ("Mesa Verde", True), ("Juniper", True), ("Piñon", True),
    ("Sage", True), ("Yucca", True), ("Cedar Ridge", True), ("Aspen", True),
    ("Canyon", True), ("Arroyo", True), ("Sunset", True), ("Ridgecrest", True),
    ("Main", True), ("Church", True), ("School", True), ("Old Ranch", True),
    ("Coyote", True), ("Roadrunner", True), ("Turquoise", True), ("Lomas", True),
    ("Calle Peñasco", False), ("Camino del Río", False), ("Avenida Juárez", False),
    ("Paseo de la Montaña", False), ("Calle Luna", False), ("Camino Real", False),
    ("Vía Sombra", False), ("Calle de Niños", False), ("Route 66", False),
]
SUFFIXES = ["St", "Ave", "Rd", "Dr", "Ln", "Ct", "Way", "Trl", "Pl", "Loop", "Cir", "Blvd"]
UNITS = ["Apt", "Unit", "Lot", "#", "Trlr", "Spc"]

# ---------------------------------------------------------------- people

# (name, weight). Names a district in the Southwest would hold, with the
# letters that break naive importers: accents, ñ, ü, ç, apostrophes,
# hyphens and blanks; a few (Nguyễn, Łukasz, Dvořák, Şahin) that
# windows-1252 cannot hold.
FEMALE = [
    ("Sofia", 30), ("Isabella", 26), ("Emma", 24), ("Olivia", 24), ("Camila", 22),
    ("Mia", 22), ("Ava", 20), ("Valentina", 16), ("Amelia", 16), ("Harper", 12),
    ("Evelyn", 12), ("Abigail", 12), ("Emily", 12), ("Elena", 12), ("Lucía", 12),
    ("María", 14), ("Ximena", 10), ("Natalia", 10), ("Chloe", 8), ("Zoë", 6),
    ("Renée", 4), ("Inés", 5), ("Aaliyah", 8), ("Nizhoni", 6), ("Ayasha", 3),
    ("Priya", 5), ("Fatima", 5), ("Mei", 4), ("Anh", 4), ("Thảo", 2),
    ("Guadalupe", 6), ("Araceli", 4), ("Begoña", 2), ("Françoise", 2), ("Anaïs", 2),
    ("Mary-Kate", 2), ("Ana Sofía", 3), ("D'Asia", 2), ("Brooklyn", 8), ("Hannah", 10),
]
MALE = [
    ("Santiago", 26), ("Mateo", 26), ("Liam", 24), ("Noah", 22), ("Sebastián", 16),
    ("Diego", 18), ("Elijah", 16), ("James", 16), ("Benjamin", 14), ("Lucas", 14),
    ("Daniel", 14), ("Gabriel", 12), ("Ángel", 10), ("Jesús", 8), ("José", 14),
    ("Joaquín", 8), ("Nicolás", 8), ("Adrián", 6), ("Ethan", 12), ("Aiden", 10),
    ("Michael", 12), ("David", 12), ("Isaiah", 8), ("Hosteen", 3), ("Kai", 5),
    ("Wei", 4), ("Minh", 4), ("Mohammed", 5), ("Arjun", 4), ("Łukasz", 1),
    ("François", 2), ("Björn", 1), ("Jean-Luc", 2), ("Juan Pablo", 3), ("D'Andre", 3),
    ("Tomás", 6), ("Ramón", 5), ("Rubén", 4), ("Carter", 8), ("Wyatt", 8),
]
SURNAMES = [
    ("García", 30), ("Martínez", 26), ("Rodríguez", 22), ("López", 22), ("Hernández", 20),
    ("González", 18), ("Pérez", 16), ("Sánchez", 16), ("Ramírez", 14), ("Torres", 14),
    ("Chávez", 14), ("Baca", 10), ("Montoya", 12), ("Lucero", 10), ("Trujillo", 10),
    ("Romero", 12), ("Gallegos", 8), ("Núñez", 8), ("Peña", 8), ("Ortiz", 10),
    ("Smith", 18), ("Johnson", 14), ("Williams", 12), ("Brown", 12), ("Jones", 10),
    ("Miller", 10), ("Davis", 10), ("Wilson", 8), ("Anderson", 8), ("Taylor", 8),
    ("Begay", 10), ("Yazzie", 8), ("Tsosie", 6), ("Benally", 5), ("Nez", 5),
    ("Nguyễn", 6), ("Trần", 3), ("Kim", 4), ("Patel", 5), ("Chen", 4),
    ("O'Brien", 5), ("O'Connor", 3), ("D'Souza", 2), ("McAllister", 3), ("De la Cruz", 4),
    ("St. Clair", 2), ("Van Dyke", 2), ("Müller", 2), ("Schäfer", 1), ("Gonçalves", 2),
    ("Çelik", 1), ("Şahin", 1), ("Dvořák", 1), ("Ødegaard", 1), ("Haddad", 2),
    ("Okafor", 2), ("Whitehorse", 3), ("Running Bear", 1),
]
INITIALS = "ABCDEFGHJKLMNPRSTVW"
NICKNAMES = ["Chuy", "Lupe", "Nacho", "Pepe", "Memo", "Beto", "Lalo", "Toño", "Cuca",
             "Bobby", "Liz", "Kat", "J.J.", "A.J.", "Mo", "Sam", "Max", "Dani", "Ty",
             'Robert "Bobby"', 'Kate "Katie"', "T'Keyah"]
PROGRAMS = ["ELL", "IEP", "504 Plan", "GATE", "Title I", "McKinney-Vento", "Bus 4", "Bus 12",
            "Bus 27", "Bilingual (Spanish)", "Diné language"]
DEPARTMENTS = ["Science, Technology & Eng.", "Math", "English, Reading & Writing",
               "Special Education", "Athletics & Activities", "Fine Arts", "Counseling",
               "Library & Media", "Nutrition Services", "Custodial", "Front Office",
               "Bilingual Education"]


class Pool:
    """Weighted values, drawn with one random number."""

    def __init__(self, pairs):
        self.values, self.cum, total = [], [], 0
        for value, weight in pairs:
            total += weight
            self.values.append(value)
            self.cum.append(total)
        self.total = total

    def draw(self, rnd):
        return self.values[bisect.bisect_right(self.cum, rnd() * self.total)]


FEMALE_POOL, MALE_POOL, SURNAME_POOL = Pool(FEMALE), Pool(MALE), Pool(SURNAMES)
SHORT_SURNAMES = Pool([(n, w) for n, w in SURNAMES if len(n) <= 9 and " " not in n])
CITY_POOL = Pool([((c, s, z), w) for c, s, z, w in CITIES])

# ---------------------------------------------------------------- text

# Letters that decomposition does not take to a base letter.
FOLD = str.maketrans({"Ł": "L", "ł": "l", "Ø": "O", "ø": "o", "Đ": "D", "đ": "d",
                      "ı": "i", "Ħ": "H", "ħ": "h"})


_plain = {}


def plain(text):
    """The ASCII letters and digits of a name, lower case: e-mail addresses."""
    k = _plain.get(text)
    if k is None:
        k = "".join(ch.lower() for ch in unicodedata.normalize("NFKD", text.translate(FOLD))
                    if ch.isascii() and ch.isalnum())
        _plain[text] = k
    return k


def fold_unencodable(err):
    """Encode-error handler: a letter the code page lacks becomes its base
    letter, as a Windows SIS export writes it (ễ -> e, Ł -> L); '?' if none."""
    out = []
    for ch in err.object[err.start:err.end]:
        base = "".join(c for c in unicodedata.normalize("NFKD", ch.translate(FOLD))
                       if not unicodedata.combining(c))
        try:
            base.encode(err.encoding)
        except (UnicodeEncodeError, LookupError):
            base = ""
        out.append(base or "?")
    return "".join(out), err.end


codecs.register_error("gen_patrons_fold", fold_unencodable)

_sort_keys = {}


def sort_key(name):
    """How an SIS report sorts a name: accents ignored, then case."""
    k = _sort_keys.get(name)
    if k is None:
        k = "".join(c for c in unicodedata.normalize("NFKD", name.translate(FOLD))
                    if not unicodedata.combining(c)).casefold()
        _sort_keys[name] = k
    return k

# ---------------------------------------------------------------- keys


DOUBLED = str.maketrans("0123456789", "0246813579")   # a digit doubled, its digits summed


def luhn_digit(digits):
    """The check digit that makes digits + it pass the Luhn test."""
    backwards = digits[::-1]
    total = sum(map(int, backwards[0::2].translate(DOUBLED) + backwards[1::2]))
    return str(-total % 10)


class Keys:
    """District IDs and barcodes, each drawn at random and never one in use:
    a student's ID is 9 digits, a staff member's "E" and 6 digits; a barcode
    is 2, the library's code, an 8-digit serial and a check digit."""

    def __init__(self, rnd):
        self.rnd = rnd
        self.ids = set()
        self.barcodes = set()

    def note(self, district_id, barcode):
        self.ids.add(district_id)
        if barcode:
            self.barcodes.add(barcode)

    def district_id(self, staff):
        r = self.rnd.random
        while True:
            k = "E%06d" % (100000 + int(r() * 900000)) if staff else str(100000000 + int(r() * 900000000))
            if k not in self.ids:
                self.ids.add(k)
                return k

    def barcode(self):
        r = self.rnd.random
        while True:
            body = "2%s%08d" % (LIBRARY_CODE, int(r() * 100000000))
            k = body + luhn_digit(body)
            if k not in self.barcodes:
                self.barcodes.add(k)
                return k

# ---------------------------------------------------------------- patrons


def us_date(ordinal):
    d = datetime.date.fromordinal(ordinal)
    return f"{d.month:02d}/{d.day:02d}/{d.year}"


ELEMENTARY_GRADES = ("PK", "K", "01", "02", "03", "04", "05")


def grade_number(grade):
    """PK -1, K 0, "01".."12" 1..12."""
    return -1 if grade == "PK" else 0 if grade == "K" else int(grade)


def roster(number, kind):
    """A school's homerooms, the same every day whatever the seed: three
    rooms per elementary grade ("104 - Lucero"), fourteen advisory teachers
    for the older grades ("Lucero, M.")."""
    rnd = random.Random(f"{DISTRICT} homerooms {number}")
    grades = KINDS[kind][0]
    rooms = {}
    used = set()
    for g in grades:
        if g in ELEMENTARY_GRADES:
            labels = []
            for _ in range(3 if kind != "early" else 4):
                while True:
                    room = 100 + 10 * max(0, grade_number(g)) + rnd.randrange(1, 10)
                    if room not in used:
                        used.add(room)
                        break
                labels.append(f"{room} - {SURNAME_POOL.draw(rnd.random)}")
            rooms[g] = labels
        else:
            if "advisory" not in rooms:
                rooms["advisory"] = [f"{SURNAME_POOL.draw(rnd.random)}, {rnd.choice('ABCDEFGHJLMNPRSTVW')}."
                                     for _ in range(14)]
            rooms[g] = rooms["advisory"]
    return rooms


ROSTERS = {s[0]: roster(s[0], s[3]) for s in SITES}
SCHOOLS_FOR_GRADE = {}
for _s in SITES:
    for _g in KINDS[_s[3]][0]:
        SCHOOLS_FOR_GRADE.setdefault(_g, []).append(_s)


class Maker:
    """Makes patron rows (lists in COLUMNS order) with one seeded generator."""

    def __init__(self, rnd, keys):
        self.rnd = rnd
        self.r = rnd.random
        self.keys = keys

    # -- pieces
    def gender(self):
        x = self.r()
        return "F" if x < 0.485 else "M" if x < 0.97 else "X" if x < 0.985 else ""

    def first_name(self, gender):
        if gender == "F" or (gender != "M" and self.r() < 0.5):
            return FEMALE_POOL.draw(self.r)
        return MALE_POOL.draw(self.r)

    def surname(self):
        r = self.r
        if r() < 0.05:                      # a double surname, joined by a hyphen
            a, b = SHORT_SURNAMES.draw(r), SHORT_SURNAMES.draw(r)
            if a != b:
                return f"{a}-{b}"
        return SURNAME_POOL.draw(r)

    def middle_name(self, gender):
        x = self.r()
        if x < 0.45:
            return self.first_name(gender).split(" ")[0]
        if x < 0.62:
            return INITIALS[int(self.r() * len(INITIALS))] + "."
        return ""

    def phone(self):
        r = self.r
        area = "505" if r() < 0.8 else "575"
        return f"({area}) 555-{int(r() * 10000):04d}"

    def address(self, row):
        r, rnd = self.r, self.rnd
        name, suffixed = STREETS[int(r() * len(STREETS))]
        street = f"{name} {SUFFIXES[int(r() * len(SUFFIXES))]}" if suffixed else name
        number = 10 + int(r() * 11990)
        x = r()
        if x < 0.003:                       # two lines in one field
            line = (f"{number} {street}\n{rnd.choice(UNITS)} {rnd.randrange(1, 300)}" if x < 0.0015
                    else f"PO Box {rnd.randrange(1, 5000)}\n{number} {street}")
        elif x < 0.08:                      # a comma: a quoted field
            line = f"{number} {street}, {rnd.choice(UNITS)} {rnd.randrange(1, 300)}{rnd.choice(['', '', 'A', 'B'])}"
        else:
            line = f"{number} {street}"
        city, state, zipcode = CITY_POOL.draw(r)
        if r() < 0.12:
            zipcode = f"{zipcode}-{int(r() * 10000):04d}"
        row[ADDRESS], row[CITY], row[STATE], row[ZIP] = line, city, state, zipcode

    def email(self, row):
        first, last = plain(row[FIRST].split(" ")[0]), plain(row[LAST])
        if row[PTYPE] == "Student":
            return f"{first[:1]}{last[:12]}{row[DID][-4:]}@{STUDENT_DOMAIN}"
        return f"{first}.{last}@{STAFF_DOMAIN}"

    def homeroom(self, row, site):
        rooms = ROSTERS[site[0]]
        if row[PTYPE] != "Student":
            return ""
        labels = rooms.get(row[GRADE])
        if not labels:
            return ""
        if row[GRADE] not in ELEMENTARY_GRADES and self.r() < 0.15:
            return ""                       # no advisory period on the schedule
        return labels[int(self.r() * len(labels))]

    def guardian_or_programme(self, row):
        r = self.r
        x = r()
        if row[PTYPE] != "Student":
            return DEPARTMENTS[int(r() * len(DEPARTMENTS))] if x < 0.45 else ""
        if x < 0.35:                        # "Last, First": quoted in the file
            last = row[LAST] if r() < 0.75 else self.surname()
            text = f"{last}, {self.first_name('F' if r() < 0.6 else 'M')}"
            return text if len(text) <= 30 else text.split("-")[0][:30]
        if x < 0.48:
            return PROGRAMS[int(r() * len(PROGRAMS))]
        return ""

    # -- a whole patron
    def student(self, site):
        r = self.r
        row = [""] * len(COLUMNS)
        grades = KINDS[site[3]][0]
        grade = grades[int(r() * len(grades))]
        g = grade_number(grade)
        row[DID] = self.keys.district_id(False)
        row[BARCODE] = self.keys.barcode()
        row[GENDER] = self.gender()
        row[FIRST] = self.first_name(row[GENDER])
        row[LAST] = self.surname()
        row[MIDDLE] = self.middle_name(row[GENDER])
        row[NICK] = NICKNAMES[int(r() * len(NICKNAMES))] if r() < 0.06 else ""
        row[PTYPE] = "Student"
        row[ACCESS] = ("Elementary Student" if g <= 5 else
                       "Middle School Student" if g <= 8 else "High School Student")
        row[SITE] = str(site[0])
        row[GRADE] = grade
        row[HOMEROOM] = self.homeroom(row, site)
        # age on 1 September is grade + 5; a few were held back or skipped ahead
        age = g + 5 + (1 if r() < 0.04 else -1 if r() < 0.01 else 0)
        start = datetime.date(FALL - age - 1, 9, 2).toordinal()
        row[BIRTH] = us_date(start + int(r() * 365))
        row[GRADYEAR] = str(FALL + 1 + 12 - g)
        last_grade = grade_number(grades[-1])   # the card lasts while they are at this school
        row[EXPIRES] = f"{FALL + 1 + max(0, last_grade - g)}-06-30"
        row[EMAIL] = self.email(row) if g >= 2 or r() < 0.5 else ""
        row[PHONE] = self.phone() if r() < 0.93 else ""
        self.address(row)
        row[UDF1] = self.guardian_or_programme(row)
        return row

    def staff(self, site, teacher):
        r, rnd = self.r, self.rnd
        row = [""] * len(COLUMNS)
        row[DID] = self.keys.district_id(True)
        row[BARCODE] = self.keys.barcode()
        row[GENDER] = self.gender()
        row[FIRST] = self.first_name(row[GENDER])
        row[LAST] = self.surname()
        row[MIDDLE] = self.middle_name(row[GENDER])
        row[NICK] = NICKNAMES[int(r() * len(NICKNAMES))] if r() < 0.04 else ""
        row[PTYPE] = "Teacher" if teacher else "Staff"
        x = r()
        row[ACCESS] = (row[PTYPE] if x < 0.88 else "Library Staff" if x < 0.94 else "Administrator")
        row[SITE] = str(site[0])
        if teacher and KINDS[site[3]][0] and r() < 0.5:
            row[HOMEROOM] = f"Rm {rnd.randrange(100, 300)}"
        start = datetime.date(FALL - 67, 1, 1).toordinal()
        row[BIRTH] = us_date(start + int(r() * 44 * 365))
        row[EXPIRES] = f"{FALL + 1 + (1 if r() < 0.3 else 0)}-06-30"
        row[EMAIL] = self.email(row)
        row[PHONE] = self.phone() if r() < 0.85 else ""
        self.address(row)
        row[UDF1] = self.guardian_or_programme(row)
        return row

    def patron(self, site):
        x = self.r()
        if not KINDS[site[3]][2] or not KINDS[site[3]][0]:          # an office
            return self.staff(site, x < 0.15)
        if x < 0.89:
            return self.student(site)
        return self.staff(site, x < 0.955)

    # -- the next day
    def change(self, row):
        """Change one or two things about a patron, as a day at school does."""
        for _ in range(1 if self.r() < 0.75 else 2):
            CHANGES.draw(self.r)(self, row)

    def ch_move(self, row):
        self.address(row)
        if self.r() < 0.4:
            row[PHONE] = self.phone()

    def ch_homeroom(self, row):
        site = SITE_BY_NUMBER.get(row[SITE])
        if site and row[PTYPE] == "Student":
            row[HOMEROOM] = self.homeroom(row, site) or row[HOMEROOM]
        elif row[PTYPE] == "Teacher":
            row[HOMEROOM] = f"Rm {self.rnd.randrange(100, 300)}"

    def ch_phone(self, row):
        row[PHONE] = self.phone() if row[PHONE] or self.r() < 0.9 else ""

    def ch_email(self, row):
        row[EMAIL] = self.email(row) if not row[EMAIL] else row[EMAIL].replace("@", "1@", 1)

    def ch_transfer(self, row):
        here = SITE_BY_NUMBER.get(row[SITE])
        if row[PTYPE] == "Student":
            choices = [s for s in SCHOOLS_FOR_GRADE.get(row[GRADE], []) if s is not here]
        else:                               # staff move anywhere, offices included
            choices = [s for s in SITES if s is not here]
        if not choices:
            return
        site = choices[int(self.r() * len(choices))]
        row[SITE] = str(site[0])
        row[HOMEROOM] = self.homeroom(row, site)

    def ch_last_name(self, row):
        row[LAST] = self.surname()
        if row[EMAIL]:
            row[EMAIL] = self.email(row)

    def ch_lost_card(self, row):
        row[BARCODE] = self.keys.barcode()

    def ch_renewal(self, row):
        year = row[EXPIRES][:4]
        row[EXPIRES] = f"{int(year) + 1}-06-30" if year.isdigit() else f"{FALL + 1}-06-30"

    def ch_udf(self, row):
        row[UDF1] = self.guardian_or_programme(row)

    def ch_nickname(self, row):
        row[NICK] = NICKNAMES[int(self.r() * len(NICKNAMES))] if not row[NICK] else ""

    def ch_access(self, row):
        row[ACCESS] = {"Teacher": "Administrator", "Staff": "Library Staff"}.get(row[PTYPE], "Restricted Student")

    def ch_middle(self, row):
        row[MIDDLE] = self.middle_name(row[GENDER])

    def ch_gender(self, row):
        row[GENDER] = {"": "F", "X": "M", "F": "X", "M": ""}.get(row[GENDER], "")


CHANGES = Pool([(Maker.ch_move, 22), (Maker.ch_homeroom, 18), (Maker.ch_phone, 12),
                (Maker.ch_email, 6), (Maker.ch_transfer, 8), (Maker.ch_last_name, 4),
                (Maker.ch_lost_card, 5), (Maker.ch_renewal, 5), (Maker.ch_udf, 8),
                (Maker.ch_nickname, 5), (Maker.ch_access, 3), (Maker.ch_middle, 2),
                (Maker.ch_gender, 2)])

# ---------------------------------------------------------------- files

ENCODINGS = {  # --encoding -> (Python codec, byte-order mark, CsvTextEncoding)
    "utf-8": ("utf-8", b"", "UTF-8"),
    "utf-8-sig": ("utf-8", codecs.BOM_UTF8, "UTF-8"),
    "cp1252": ("cp1252", b"", "windows-1252"),
    "utf-16": ("utf-16-le", codecs.BOM_UTF16_LE, "UTF-16"),
}


class Export:
    """The CSV being written: its encoding, line ends and site column."""

    def __init__(self, path, encoding, eol, site_as):
        codec, bom, _ = ENCODINGS[encoding]
        raw = sys.stdout.buffer if path == "-" else open(path, "wb")
        raw.write(bom)
        self.raw = raw
        self.text = codecs.getwriter(codec)(raw, errors="gen_patrons_fold")
        self.csv = csv.writer(self.text, lineterminator="\r\n" if eol == "crlf" else "\n")
        self.by_name = site_as == "name"
        self.csv.writerow(COLUMNS)

    def rows(self, rows):
        if self.by_name:
            for row in rows:
                site = SITE_BY_NUMBER.get(row[SITE])
                if site:
                    row = list(row)
                    row[SITE] = site[2]
                self.csv.writerow(row)
        else:
            self.csv.writerows(rows)

    def close(self):
        self.text.flush()
        if self.raw is not sys.stdout.buffer:
            self.raw.close()


def site_counts(rows):
    """Rows per site in proportion to its share (largest remainders)."""
    shares = [KINDS[s[3]][1] for s in SITES]
    total = sum(shares)
    exact = [rows * w / total for w in shares]
    counts = [int(x) for x in exact]
    left = rows - sum(counts)
    for k in sorted(range(len(SITES)), key=lambda k: (-(exact[k] - counts[k]), k))[:left]:
        counts[k] += 1
    return counts


def first_load(out, rows, seed):
    rnd = random.Random(seed)
    maker = Maker(rnd, Keys(rnd))
    for site, n in zip(SITES, site_counts(rows)):
        block = [maker.patron(site) for _ in range(n)]
        block.sort(key=lambda row: (sort_key(row[LAST]), sort_key(row[FIRST]), row[DID]))
        out.rows(block)


def input_encoding(path):
    """The encoding of an export: its byte-order mark, else UTF-8 if every
    byte reads as UTF-8, else windows-1252."""
    with open(path, "rb") as f:
        head = f.read(4)
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        if head.startswith(codecs.BOM_UTF16_LE) or head.startswith(codecs.BOM_UTF16_BE):
            return "utf-16"
        f.seek(0)
        check = codecs.getincrementaldecoder("utf-8")()
        try:
            while True:
                chunk = f.read(1 << 22)
                check.decode(chunk, final=not chunk)
                if not chunk:
                    return "utf-8"
        except UnicodeDecodeError:
            return "cp1252"


def read_export(path, encoding):
    """The rows of an export in COLUMNS order (its header names the columns),
    the site as its school number."""
    with open(path, encoding=encoding, newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            sys.exit(f"gen_patrons: {path}: no column {', '.join(missing)} in its header")
        where = [header.index(c) for c in COLUMNS]
        width = len(header)
        for rec in reader:
            if not rec:
                continue
            if len(rec) < width:
                rec += [""] * (width - len(rec))
            row = [rec[k] for k in where]
            site = SITE_BY_NAME.get(row[SITE])
            if site:
                row[SITE] = str(site[0])
            yield row


def next_day(out, path, encoding, seed, change_rate, remove_rate, add_rate):
    rnd = random.Random(seed)
    keys = Keys(rnd)
    for row in read_export(path, encoding):       # every key in use stays taken
        keys.note(row[DID], row[BARCODE])
    maker = Maker(rnd, keys)
    r = rnd.random
    batch = []
    for row in read_export(path, encoding):
        x = r()
        if x >= remove_rate:
            if x < remove_rate + change_rate:
                maker.change(row)
            batch.append(row)
        if r() < add_rate:                         # someone new at this patron's school
            site = SITE_BY_NUMBER.get(row[SITE]) or SITES[int(r() * len(SITES))]
            batch.append(maker.patron(site))
        if len(batch) >= 4096:
            out.rows(batch)
            batch = []
    out.rows(batch)


def write_sites(path):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["short_name", "name", "media", "school_number"])
        for number, short, name, kind in SITES:
            w.writerow([short, name, "true" if KINDS[kind][2] else "false", number])


def write_profile(path, encoding, site_as):
    lines = [
        "#------------------------------------------------------------",
        "# Patron Import Converter profile",
        f"# {DISTRICT}: nightly SIS patron export",
        "#------------------------------------------------------------",
        "",
        "#COMMENTS_BEGIN",
        "Written by tools/gen_patrons.py with the export it maps.",
        "One row per patron, a header row first; students and staff together",
        "(staff District IDs start with E). The site column holds the SIS",
        "school number" + (" (here: the school's name)" if site_as == "name" else "")
        + "; map_site turns it into the Destiny site short name.",
        "#COMMENTS_END",
        "",
        f"CsvTextEncoding={ENCODINGS[encoding][2]}",
        "InputRowsToSkip=1",
        "MatchUsingDistrictID=true",
        "SiteShortNameDefault=",
        "UpdateBeforeDelete=false",
        "",
        "# rows without a District ID are not patrons",
        "SkipMode=or",
        "SkipMax=100",
        "SkipWhen_1={1},",
        "",
        "DeleteMode=or",
        "DeleteMax=100",
        "",
        "AssociationMode=and",
        "AssociationMax=100",
        "",
    ]
    for col in range(len(COLUMNS)):
        field, option = PIC_FIELDS[col]
        lines.append(f"field_{field}={{{col + 1}{',' + option if option else ''}}}")
    lines.append("")
    for number, short, name, _ in SITES:
        lines.append(f"map_site_{name if site_as == 'name' else number}={short}")
    lines += ["", "map_gender_M=M", "map_gender_F=F", "map_gender_X=U", "map_gender_default=U", "",
              f"field_type_total={len(COLUMNS)}"]
    for col, (pattern, _) in sorted(DATE_FORMATS.items()):
        lines.append(f"field_type_{col + 1}=date,{pattern}")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")


def rate(text):
    v = float(text)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError("a rate is a fraction from 0 to 1")
    return v


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].split(" - ", 1)[1],
                                 epilog="The module's docstring says more: what it makes and why.")
    ap.add_argument("--rows", type=int, default=1000, help="rows of a first-load file (default 1000)")
    ap.add_argument("--seed", type=int, default=1, help="the same seed makes the same file (default 1)")
    ap.add_argument("--encoding", default="utf-8", choices=list(ENCODINGS),
                    help="of the CSV written (default utf-8)")
    ap.add_argument("--eol", default="crlf", choices=["crlf", "lf"], help="line ends (default crlf)")
    ap.add_argument("--mutate-from", metavar="DAY1.csv",
                    help="write the next day's export of this one instead of a first load")
    ap.add_argument("--input-encoding", default="auto",
                    help="of the --mutate-from file (default auto: its byte-order mark, else UTF-8 "
                         "if it reads as UTF-8, else cp1252)")
    ap.add_argument("--change-rate", type=rate, default=0.05, help="share of patrons changed (0.05)")
    ap.add_argument("--remove-rate", type=rate, default=0.02, help="share of patrons gone (0.02)")
    ap.add_argument("--add-rate", type=rate, default=0.02, help="new patrons per patron read (0.02)")
    ap.add_argument("--site-as", default="code", choices=["code", "name"],
                    help="the site column holds the school number (default) or the school's name")
    ap.add_argument("--sites-out", metavar="sites.csv",
                    help="also write the sites: short_name,name,media,school_number")
    ap.add_argument("--profile-out", metavar="students.properties",
                    help="also write a PIC properties file that maps the export")
    ap.add_argument("-o", "--output", default="-", metavar="FILE", help="the CSV (default: standard output)")
    a = ap.parse_args(argv)
    if a.rows < 0:
        ap.error("--rows must be 0 or more")
    if a.remove_rate + a.change_rate > 1.0:
        ap.error("--remove-rate and --change-rate add up to more than 1")
    if a.sites_out:
        write_sites(a.sites_out)
    if a.profile_out:
        write_profile(a.profile_out, a.encoding, a.site_as)
    if a.mutate_from:
        encoding = input_encoding(a.mutate_from) if a.input_encoding == "auto" else a.input_encoding
        try:
            codecs.lookup(encoding)
        except LookupError:
            ap.error(f"unknown --input-encoding {encoding}")
    out = Export(a.output, a.encoding, a.eol, a.site_as)
    try:
        if a.mutate_from:
            next_day(out, a.mutate_from, encoding, a.seed, a.change_rate, a.remove_rate, a.add_rate)
        else:
            first_load(out, a.rows, a.seed)
        out.close()
    except BrokenPipeError:             # `gen_patrons.py | head`: the reader has all it wanted
        sys.stdout = None
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
