# ruff: noqa: E501  (a table of sources: long lines read better than wrapped ones)
"""Source of the built-in SPIFs shipped in src/relto/labels/data/.

Run ``python tests/labels/build_spifs.py`` to regenerate the XML files;
``test_builtin_spifs_match_their_source`` fails when they drift. Every level and
every equivalence below names the public document it comes from; the XML carries
that citation as a comment. Where no public source is cited, there is no mapping.
"""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

DATA = Path(__file__).resolve().parents[2] / "src" / "relto" / "labels" / "data"


def oid(name: str) -> str:
    """A stable OID under the UUID arc 2.25 (ITU-T X.667), derived from the name."""
    return "2.25." + str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:relto:spif:{name}").int)


@dataclass(frozen=True)
class Level:
    name: str
    source: str
    phrases: tuple[tuple[str, str], ...] = ()  # (xml:lang, phrase)


@dataclass(frozen=True)
class Scheme:
    nation: str
    title: str
    levels: tuple[Level, ...]  # lowest first; hierarchy and lacv = position (1-based)
    rel_to_prefix: str = "REL TO "


US_EO = "Executive Order 13526 (2009) sec. 1.2 Classification Levels; 32 CFR part 2001"
US_U = "ISOO marking guide 'Marking Classified National Security Information' (2018): UNCLASSIFIED marks information that is not classified"
UK_GSCP = "HM Government Security Classifications Policy (Cabinet Office, 2014, updated June 2023): OFFICIAL, SECRET, TOP SECRET"
AU_PSPF = "Australian Government Protective Security Policy Framework, Policy 8 / Release 2024 Requirement on classification: UNOFFICIAL, OFFICIAL, OFFICIAL: Sensitive, PROTECTED, SECRET, TOP SECRET"
CA_TBS = "Treasury Board of Canada Secretariat, Directive on Security Management, Appendix J: Standard on Security Categorization (classified: CONFIDENTIAL, SECRET, TOP SECRET)"
NZ_PSR = "New Zealand Protective Security Requirements, New Zealand Government Security Classification System (national security: RESTRICTED, CONFIDENTIAL, SECRET, TOP SECRET)"
JP_GSOMIA = "Agreement between Japan and the USA concerning Security Measures for the Protection of Classified Military Information (GSOMIA, 10 Aug 2007), Japanese designations 秘 (Hi), 極秘 (Gokuhi), 機密 (Kimitsu)"
KR_REG = "Republic of Korea Security Work Regulations (보안업무규정, Presidential Decree) Art. 4: Ⅰ급비밀, Ⅱ급비밀, Ⅲ급비밀"
NATO_CM = "NATO C-M(2002)49 Security within the North Atlantic Treaty Organization: NATO RESTRICTED, NATO CONFIDENTIAL, NATO SECRET, COSMIC TOP SECRET (NATO UNCLASSIFIED for unclassified NATO information)"

SCHEMES: dict[str, Scheme] = {
    "USA": Scheme(
        "USA",
        "United States national security information",
        (
            Level("UNCLASSIFIED", US_U),
            Level("CONFIDENTIAL", US_EO),
            Level("SECRET", US_EO),
            Level("TOP SECRET", US_EO),
        ),
    ),
    "GBR": Scheme(
        "GBR",
        "United Kingdom Government Security Classifications",
        (Level("OFFICIAL", UK_GSCP), Level("SECRET", UK_GSCP), Level("TOP SECRET", UK_GSCP)),
    ),
    "AUS": Scheme(
        "AUS",
        "Australian Government security classifications (PSPF)",
        (
            Level("UNOFFICIAL", AU_PSPF),
            Level("OFFICIAL", AU_PSPF),
            Level("OFFICIAL: Sensitive", AU_PSPF),
            Level("PROTECTED", AU_PSPF),
            Level("SECRET", AU_PSPF),
            Level("TOP SECRET", AU_PSPF),
        ),
    ),
    "CAN": Scheme(
        "CAN",
        "Government of Canada security categorization (classified information)",
        (
            Level("UNCLASSIFIED", CA_TBS),
            Level("CONFIDENTIAL", CA_TBS),
            Level("SECRET", CA_TBS),
            Level("TOP SECRET", CA_TBS),
        ),
    ),
    "NZL": Scheme(
        "NZL",
        "New Zealand Government Security Classification System (national security)",
        (
            Level("UNCLASSIFIED", NZ_PSR),
            Level("RESTRICTED", NZ_PSR),
            Level("CONFIDENTIAL", NZ_PSR),
            Level("SECRET", NZ_PSR),
            Level("TOP SECRET", NZ_PSR),
        ),
    ),
    "JPN": Scheme(
        "JPN",
        "Japan classified information designations",
        (
            Level("HI", JP_GSOMIA, (("ja", "秘"),)),
            Level("GOKUHI", JP_GSOMIA, (("ja", "極秘"),)),
            Level("KIMITSU", JP_GSOMIA, (("ja", "機密"),)),
        ),
    ),
    "KOR": Scheme(
        "KOR",
        "Republic of Korea classified information grades",
        (
            Level("CLASS III SECRET", KR_REG, (("ko", "Ⅲ급비밀"),)),
            Level("CLASS II SECRET", KR_REG, (("ko", "Ⅱ급비밀"),)),
            Level("CLASS I SECRET", KR_REG, (("ko", "Ⅰ급비밀"),)),
        ),
    ),
    "NATO": Scheme(
        "NATO",
        "NATO security classifications",
        (
            Level("UNCLASSIFIED", NATO_CM, (("fr", "SANS CLASSIFICATION"),)),
            Level("RESTRICTED", NATO_CM, (("fr", "DIFFUSION RESTREINTE"),)),
            Level("CONFIDENTIAL", NATO_CM, (("fr", "CONFIDENTIEL"),)),
            Level("SECRET", NATO_CM, (("fr", "SECRET"),)),
            Level("TOP SECRET", NATO_CM, (("fr", "TRES SECRET"),)),
        ),
        rel_to_prefix="Releasable to ",
    ),
}

POLICY_IDS = {n: ("1.3.26.1.3.1" if n == "NATO" else oid(n)) for n in SCHEMES}
POLICY_IDS["PARTNERSHIP"] = oid("PARTNERSHIP")

FVEY_SRC = (
    "UK Government Security Classifications Policy (2023), international equivalents: "
    "AUS, CAN, NZL and USA SECRET and TOP SECRET correspond to UK SECRET and TOP SECRET; "
    "the same correspondence is stated in the Australian PSPF foreign-information guidance"
)
NATO_SRC = (
    "NATO C-M(2002)49 requires members to protect NATO information at the equivalent "
    "national level; the UK GSCP (2023), US DoDM 5200.01 Vol. 3 and the Canadian "
    "Directive on Security Management name NATO SECRET/COSMIC TOP SECRET (and NATO "
    "CONFIDENTIAL for USA and CAN) as their national equivalents"
)
JPUS_SRC = (
    "Japan-USA GSOMIA (10 Aug 2007): Kimitsu = TOP SECRET, Gokuhi = SECRET, Hi = CONFIDENTIAL"
)
KRUS_SRC = (
    "Republic of Korea-USA Security Agreement for the Protection of Classified Military "
    "Information (군사비밀보호에 관한 보안협정, signed Washington 24 Sep 1987; text reproduced at "
    "https://leesiwoo.net/?p=3368; cited as the ROK-US agreement in the 2014 ROK-JPN-USA "
    "trilateral information sharing arrangement): 군사Ⅰ급비밀 = TOP SECRET, "
    "군사Ⅱ급비밀 = SECRET, 군사Ⅲ급비밀 = CONFIDENTIAL"
)
# Verified in /work/shared/research/agreements-export-sources.md section 1a ([V]) and
# confirmed by Japan's Ministry of Foreign Affairs (issue 13): Art. 4(2) pairs 極秘 and
# 特定秘密 with 군사II급비밀 (SECRET) and 秘 with 군사III급비밀 (CONFIDENTIAL); no TOP SECRET
# tier. 特定秘密 is a designation under Act No. 108 of 2013, not a level of relto's JPN
# scheme, so only 極秘 (GOKUHI) and 秘 (HI) carry the equivalence here.
JPKR_SRC = (
    "Japan-Republic of Korea GSOMIA (signed Seoul 23 Nov 2016), Art. 4(2) correspondence "
    "table of the Japanese text (https://ja.wikisource.org/wiki/Page:Japan-Korea_GSOMIA_"
    "(Japanese_Text).pdf/3): 極秘 (Gokuhi) and 特定秘密 = 군사Ⅱ급비밀 = SECRET, 秘 (Hi) = "
    "군사Ⅲ급비밀 = CONFIDENTIAL; Art. 4(1) lists no 機密 or 군사Ⅰ급비밀, so there is no TOP "
    "SECRET tier"
)

# Bilateral agreements whose classification article has not been read (JPN-AUS 2012,
# JPN-GBR 2013, JPN-CAN and JPN-NZL 2025, AUS-KOR 2009) have no class here: see
# docs/labels.md and tests/labels/test_labels_bilateral_gaps.py before adding one.
#: Partnership equivalence classes: (name, hierarchy, members {nation: level}, source).
#: Two levels are equivalent only when some class holds both; classes are kept small
#: so that no class implies a pair its source does not state.
CLASSES: tuple[tuple[str, int, dict[str, str], str], ...] = (
    ("FVEY TOP SECRET", 4, {n: "TOP SECRET" for n in ("USA", "GBR", "AUS", "CAN", "NZL")}, FVEY_SRC),
    ("FVEY SECRET", 3, {n: "SECRET" for n in ("USA", "GBR", "AUS", "CAN", "NZL")}, FVEY_SRC),
    ("NATO COSMIC TOP SECRET", 4, {"NATO": "TOP SECRET", "USA": "TOP SECRET", "GBR": "TOP SECRET", "CAN": "TOP SECRET"}, NATO_SRC),
    ("NATO SECRET", 3, {"NATO": "SECRET", "USA": "SECRET", "GBR": "SECRET", "CAN": "SECRET"}, NATO_SRC),
    ("NATO CONFIDENTIAL", 2, {"NATO": "CONFIDENTIAL", "USA": "CONFIDENTIAL", "CAN": "CONFIDENTIAL"}, NATO_SRC),
    ("JPN-USA TOP SECRET", 4, {"JPN": "KIMITSU", "USA": "TOP SECRET"}, JPUS_SRC),
    ("JPN-USA SECRET", 3, {"JPN": "GOKUHI", "USA": "SECRET"}, JPUS_SRC),
    ("JPN-USA CONFIDENTIAL", 2, {"JPN": "HI", "USA": "CONFIDENTIAL"}, JPUS_SRC),
    ("KOR-USA TOP SECRET", 4, {"KOR": "CLASS I SECRET", "USA": "TOP SECRET"}, KRUS_SRC),
    ("KOR-USA SECRET", 3, {"KOR": "CLASS II SECRET", "USA": "SECRET"}, KRUS_SRC),
    ("KOR-USA CONFIDENTIAL", 2, {"KOR": "CLASS III SECRET", "USA": "CONFIDENTIAL"}, KRUS_SRC),
    ("JPN-KOR SECRET", 3, {"JPN": "GOKUHI", "KOR": "CLASS II SECRET"}, JPKR_SRC),
    ("JPN-KOR CONFIDENTIAL", 2, {"JPN": "HI", "KOR": "CLASS III SECRET"}, JPKR_SRC),
)  # fmt: skip

#: REL TO categories: ISO 3166-1 alpha-3 with ISO 3166-1 numeric codes as LACVs
#: (as in the NATO SPIF examples), then the tetragraphs relto can expand.
COUNTRIES: dict[str, int] = {
    "ALB": 8, "AUS": 36, "BEL": 56, "BGR": 100, "CAN": 124, "CZE": 203, "DEU": 276,
    "DNK": 208, "ESP": 724, "EST": 233, "FIN": 246, "FRA": 250, "GBR": 826, "GRC": 300,
    "HRV": 191, "HUN": 348, "ISL": 352, "ITA": 380, "JPN": 392, "KOR": 410, "LTU": 440,
    "LUX": 442, "LVA": 428, "MKD": 807, "MNE": 499, "NLD": 528, "NOR": 578, "NZL": 554,
    "POL": 616, "PRT": 620, "ROU": 642, "SVK": 703, "SVN": 705, "SWE": 752, "TUR": 792,
    "USA": 840,
}  # fmt: skip
TETRA_LACV = {"ACGU": 2002, "FVEY": 2001, "NATO": 1001, "TEYE": 2003}
HANDLING = ("RSEN", "FOUO", "ORCON", "IMCON", "PROPIN", "RELIDO", "DSEN", "FISA")
ISO_SRC = "ISO 3166-1 alpha-3 code with its ISO 3166-1 numeric code as LACV"
TETRA_SRC = (
    "coalition tetragraph (IC-ISM CVEnumISMRelTo); membership in relto.labels.banner.TETRAGRAPHS"
)
DISSEM_SRC = "dissemination control from IC-ISM CVEnumISMDissem (CAPCO register)"


def _rel_order(nation: str | None) -> list[str]:
    tri = sorted(COUNTRIES)
    if nation in COUNTRIES:
        tri.remove(nation)
        tri.insert(0, nation)
    return tri + sorted(TETRA_LACV)


def _header(name: str, title: str) -> list[str]:
    return [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f"<!-- relto built-in SPIF: {escape(title)}. Generated by tests/labels/build_spifs.py;",
        "     edit the source there, not this file. -->",
        '<SPIF xmlns="http://www.xmlspif.org/spif" schemaVersion="2.1" version="1"',
        '      creationDate="20260101000000Z" originatorDN="CN=relto labels,O=relto"',
        '      keyIdentifier="" privilegeId="2.16.840.1.101.2.1.8.3" rbacId="2.16.840.1.101.2.1.8.3">',
        f'  <securityPolicyId name="{name}" id="{POLICY_IDS[name]}"/>',
    ]


def _pairs(nation: str) -> dict[str, list[tuple[str, str, str]]]:
    """level -> [(other nation, other level, sources)] from the partnership classes.

    One equivalence per (other nation, other level): when several classes give the
    same pair, their sources are joined in one comment (a SPIF must not repeat an
    equivalence).
    """
    out: dict[str, list[tuple[str, str, str]]] = {}
    for _name, _h, members, src in CLASSES:
        if nation not in members:
            continue
        for other, lvl in members.items():
            if other == nation:
                continue
            entries = out.setdefault(members[nation], [])
            for i, (o, ol, osrc) in enumerate(entries):
                if (o, ol) == (other, lvl):
                    if src not in osrc:
                        entries[i] = (o, ol, f"{osrc}; also: {src}")
                    break
            else:
                entries.append((other, lvl, src))
    return out


def _lacv(nation: str, level: str) -> int:
    names = [lv.name for lv in SCHEMES[nation].levels]
    return names.index(level) + 1


def national_spif(nation: str) -> str:
    s = SCHEMES[nation]
    pairs = _pairs(nation)
    others = sorted({o for lst in pairs.values() for o, _, _ in lst})
    lines = _header(nation, s.title)
    lines.append("  <securityClassifications>")
    for i, lv in enumerate(s.levels, 1):
        lines.append(f"    <!-- {escape(lv.source)} -->")
        lines.append(f'    <securityClassification name="{lv.name}" lacv="{i}" hierarchy="{i}">')
        for other, olvl, src in pairs.get(lv.name, []):
            lines.append(f"      <!-- {escape(src)} -->")
            lines.append(
                f'      <equivalentClassification policyRef="{other}" '
                f'lacv="{_lacv(other, olvl)}" applied="both"/>'
            )
        if nation == "NATO" and lv.name == "TOP SECRET":
            lines.append(
                "      <!-- C-M(2002)49: NATO TOP SECRET information is marked COSMIC TOP SECRET -->"
            )
            lines.append('      <markingData phrase="COSMIC">')
            lines.append("        <code>replacePolicy</code>")
            lines.append("      </markingData>")
        for lang, phrase in lv.phrases:
            lines.append(f'      <markingData xml:lang="{lang}" phrase={quoteattr(phrase)}>')
            lines.append("        <code>pageTopBottom</code>")
            lines.append("      </markingData>")
        lines.append("    </securityClassification>")
    lines.append("  </securityClassifications>")
    lines.append("  <securityCategoryTagSets>")
    pid = POLICY_IDS[nation]
    lines.append(f'    <securityCategoryTagSet name="Releasable To" id="{pid}.1">')
    lines.append(
        '      <securityCategoryTag name="Releasable To" tagType="enumerated" enumType="permissive">'
    )
    for code in _rel_order(nation):
        lacv = COUNTRIES.get(code) or TETRA_LACV[code]
        src = ISO_SRC if code in COUNTRIES else TETRA_SRC
        lines.append(f"        <!-- {code}: {src} -->")
        lines.append(f'        <tagCategory name="{code}" lacv="{lacv}">')
        for other in others:
            lines.append(
                f'          <equivalentSecCategoryTag policyRef="{other}" '
                f'tagSetId="{POLICY_IDS[other]}.1" tagType="enumerated" enumType="permissive" '
                f'lacv="{lacv}" applied="both"/>'
            )
        lines.append("        </tagCategory>")
    lines.append('        <markingQualifier markingCode="pageTopBottom">')
    lines.append(
        f'          <qualifier markingQualifier="{s.rel_to_prefix}" qualifierCode="prefix"/>'
    )
    lines.append('          <qualifier markingQualifier=", " qualifierCode="separator"/>')
    lines.append("        </markingQualifier>")
    lines.append("      </securityCategoryTag>")
    lines.append("    </securityCategoryTagSet>")
    lines.append(f'    <securityCategoryTagSet name="Dissemination Controls" id="{pid}.2">')
    lines.append('      <securityCategoryTag name="Not Releasable" tagType="restrictive">')
    lines.append(
        f"        <!-- NOFORN: {DISSEM_SRC}; restrictive: only clearances that hold it -->"
    )
    lines.append('        <tagCategory name="NOFORN" lacv="1">')
    lines.append(
        '          <excludedCategory tagSetRef="Releasable To" tagType="enumerated" '
        'enumType="permissive" all="true"/>'
    )
    lines.append("        </tagCategory>")
    lines.append("      </securityCategoryTag>")
    lines.append(
        '      <securityCategoryTag name="Handling" tagType="tagType7" tag7Encoding="bitSetAttributes">'
    )
    for i, name in enumerate(HANDLING, 1):
        lines.append(f"        <!-- {name}: {DISSEM_SRC} -->")
        lines.append(f'        <tagCategory name="{name}" lacv="{i}">')
        for other in others:
            lines.append(
                f'          <equivalentSecCategoryTag policyRef="{other}" '
                f'tagSetId="{POLICY_IDS[other]}.2" tagType="tagType7" lacv="{i}" applied="both"/>'
            )
        lines.append("        </tagCategory>")
    lines.append("      </securityCategoryTag>")
    lines.append("    </securityCategoryTagSet>")
    lines.append("  </securityCategoryTagSets>")
    if others:
        lines.append("  <equivalentPolicies>")
        for other in others:
            lines.append(f'    <equivalentPolicy name="{other}" id="{POLICY_IDS[other]}"/>')
        lines.append("  </equivalentPolicies>")
    if nation != "NATO":
        lines.append('  <markingData phrase="">')
        lines.append("    <code>replacePolicy</code>")
        lines.append("  </markingData>")
        lines.append("  <markingQualifier>")
        lines.append('    <qualifier markingQualifier="//" qualifierCode="separator"/>')
        lines.append("  </markingQualifier>")
    lines.append("</SPIF>")
    return "\n".join(lines) + "\n"


def partnership_spif() -> str:
    lines = _header("PARTNERSHIP", "partnership equivalences between the national schemes")
    lines.append("  <!-- Each classification is one set of national levels that public sources")
    lines.append("       declare equivalent; a pair of levels is equivalent only when one set")
    lines.append("       holds both. Pairs with no public source have no set (docs/labels.md). -->")
    lines.append("  <securityClassifications>")
    for i, (name, hier, members, src) in enumerate(CLASSES, 1):
        lines.append(f"    <!-- {escape(src)} -->")
        lines.append(f'    <securityClassification name="{name}" lacv="{i}" hierarchy="{hier}">')
        for nation, lvl in members.items():
            lines.append(f"      <!-- {nation} {escape(lvl)}: {escape(src)} -->")
            lines.append(
                f'      <equivalentClassification policyRef="{nation}" '
                f'lacv="{_lacv(nation, lvl)}" applied="both"/>'
            )
        lines.append("    </securityClassification>")
    lines.append("  </securityClassifications>")
    lines.append("  <equivalentPolicies>")
    for nation in SCHEMES:
        lines.append(f'    <equivalentPolicy name="{nation}" id="{POLICY_IDS[nation]}"/>')
    lines.append("  </equivalentPolicies>")
    lines.append("</SPIF>")
    return "\n".join(lines) + "\n"


def render_all() -> dict[str, str]:
    out = {f"{n.lower()}.xml": national_spif(n) for n in SCHEMES}
    out["partnership.xml"] = partnership_spif()
    return out


if __name__ == "__main__":
    for fname, text in render_all().items():
        (DATA / fname).write_text(text, encoding="utf-8")
        print("wrote", DATA / fname, file=sys.stderr)
