"""Who applied: the applicant's name of a case, read once from its data when it starts, for the inbox.

Applications name their applicant under a few well-known keys of the FIM data (``halter`` in the dog
tax, ``betriebsinhaber`` in the trade registration, ``antragsteller`` elsewhere), each with
``familienname`` and ``vornamen``. The name is stored with the case (``case_applicant``) and split into
searchable words (``applicant_word``: lower case, without accents, ß as ss, umlauts also as ae/oe/ue), so
"müller", "Muller" and "Mueller" all find Müller — with a prefix range of an index, never a scan.
"""

import unicodedata

from sqlalchemy import select

from .schema import ApplicantWord, CaseApplicant

APPLICANTS, WORDS = CaseApplicant.__table__, ApplicantWord.__table__
# Where applications keep the applicant, most specific first; each holds a person or an organisation.
PERSON_KEYS = ("antragsteller", "antragstellerin", "halter", "halterin", "betriebsinhaber", "inhaber", "person",
               "antragstellendePerson")
FAMILY_KEYS = ("familienname", "nachname", "name")
GIVEN_KEYS = ("vornamen", "vorname")
ORG_KEYS = ("firma", "firmenname", "organisation")
MAX_WORDS = 8
UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue"})


def applicant_name(data):
    """The applicant's name ("Vornamen Familienname") from an application's data, or None."""
    if not isinstance(data, dict):
        return None
    for key in PERSON_KEYS:
        person = data.get(key)
        if isinstance(person, dict):
            name = _name_of(person)
            if name:
                return name
        elif isinstance(person, str) and person.strip():
            return person.strip()[:512]
    return None


def _name_of(person):
    family = next((person[k] for k in FAMILY_KEYS if isinstance(person.get(k), str) and person[k].strip()), "")
    given = next((person[k] for k in GIVEN_KEYS if isinstance(person.get(k), str) and person[k].strip()), "")
    if not family:
        family = next((person[k] for k in ORG_KEYS if isinstance(person.get(k), str) and person[k].strip()), "")
    return " ".join(p.strip() for p in (given, family) if p).strip()[:512] or None


def fold(text):
    """Lower case without accents (ß as ss): how words are stored and searched."""
    text = text.casefold().replace("ß", "ss")
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def words_of(name):
    """The searchable words of a name: each folded, and with umlauts as ae/oe/ue where that differs."""
    out = []
    for part in name.replace("-", " ").split():
        for form in (fold(part), fold(part.casefold().translate(UMLAUTS))):
            form = form.strip(".,;'\"()")[:255]
            if form and form not in out:
                out.append(form)
    return out[:MAX_WORDS * 2]


INSERT_APPLICANT = "INSERT INTO case_applicant (case_id, tenant, name) VALUES (?, ?, ?)"
INSERT_WORD = "INSERT INTO applicant_word (tenant, word, case_id) VALUES (?, ?, ?)"


def index_in_step(db, ctx):
    """Step hook: when a case starts, store its applicant (if its data names one) in the same transaction."""
    if not ctx.trail.entries or ctx.trail.entries[0][1] != "case_started":
        return
    from .cases import case_data  # engine.cases imports the runtime, which installs this hook

    name = applicant_name(case_data(ctx.workflow))
    if name:
        db.run(INSERT_APPLICANT, (ctx.case_id, ctx.tenant, name))
        db.many(INSERT_WORD, [(ctx.tenant, w, ctx.case_id) for w in words_of(name)])


def install(rt):
    """Add the hook to a Runtime (every start, whoever starts the case: mailbox, CLI, web)."""
    if index_in_step not in rt.step_hooks:
        rt.step_hooks.append(index_in_step)


def cases_named(query, tenant=None):
    """A select of the case ids whose applicant has a word starting with each word of ``query`` (all of
    them), in ``tenant`` (None: every tenant); None when the query is no name (empty, or with digits, as
    an Aktenzeichen has)."""
    terms = [fold(t).strip(".,;'\"()") for t in query.replace("-", " ").split()]
    terms = [t for t in terms if t][:MAX_WORDS]
    if not terms or any(c.isdigit() for t in terms for c in t):
        return None
    found = None
    for term in reversed(terms):  # nested IN, not INTERSECT: SQLite cannot nest compound selects
        q = select(WORDS.c.case_id).where(WORDS.c.word >= term, WORDS.c.word < term + "\uffff")
        if tenant:
            q = q.where(WORDS.c.tenant == tenant)
        found = q if found is None else q.where(WORDS.c.case_id.in_(found))
    return found


def names_of(conn, case_ids):
    """{case_id: applicant name} for the given cases (those with a known applicant)."""
    if not case_ids:
        return {}
    rows = conn.execute(select(APPLICANTS.c.case_id, APPLICANTS.c.name).where(APPLICANTS.c.case_id.in_(case_ids)))
    return dict(rows.all())
