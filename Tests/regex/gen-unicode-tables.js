#!/usr/bin/env node
// Generates Sources/Schema/RegexUnicodeData.swift: the code point sets of every Unicode
// property that ECMA-262 `\p{…}` accepts (General_Category values, Script and
// Script_Extensions values, binary properties), computed by node's own RegExp engine so that
// the project's engine answers exactly as an ECMA-262 engine does.
//
// Usage: node gen-unicode-tables.js [output file]   (default: stdout)
// Candidate names come from Unicode's PropertyValueAliases (as of Unicode 14, plus the
// scripts added since); only the names node accepts are kept, so the table follows node's
// Unicode version.
"use strict";
const fs = require("fs");

const generalCategories = [
  ["C", "Other"], ["Cc", "Control", "cntrl"], ["Cf", "Format"], ["Cn", "Unassigned"],
  ["Co", "Private_Use"], ["Cs", "Surrogate"], ["L", "Letter"], ["LC", "Cased_Letter"],
  ["Ll", "Lowercase_Letter"], ["Lm", "Modifier_Letter"], ["Lo", "Other_Letter"],
  ["Lt", "Titlecase_Letter"], ["Lu", "Uppercase_Letter"], ["M", "Mark", "Combining_Mark"],
  ["Mc", "Spacing_Mark"], ["Me", "Enclosing_Mark"], ["Mn", "Nonspacing_Mark"], ["N", "Number"],
  ["Nd", "Decimal_Number", "digit"], ["Nl", "Letter_Number"], ["No", "Other_Number"],
  ["P", "Punctuation", "punct"], ["Pc", "Connector_Punctuation"], ["Pd", "Dash_Punctuation"],
  ["Pe", "Close_Punctuation"], ["Pf", "Final_Punctuation"], ["Pi", "Initial_Punctuation"],
  ["Po", "Other_Punctuation"], ["Ps", "Open_Punctuation"], ["S", "Symbol"],
  ["Sc", "Currency_Symbol"], ["Sk", "Modifier_Symbol"], ["Sm", "Math_Symbol"],
  ["So", "Other_Symbol"], ["Z", "Separator"], ["Zl", "Line_Separator"],
  ["Zp", "Paragraph_Separator"], ["Zs", "Space_Separator"],
];

const binaryProperties = [
  ["ASCII"], ["ASCII_Hex_Digit", "AHex"], ["Alphabetic", "Alpha"], ["Any"], ["Assigned"],
  ["Bidi_Control", "Bidi_C"], ["Bidi_Mirrored", "Bidi_M"], ["Case_Ignorable", "CI"], ["Cased"],
  ["Changes_When_Casefolded", "CWCF"], ["Changes_When_Casemapped", "CWCM"],
  ["Changes_When_Lowercased", "CWL"], ["Changes_When_NFKC_Casefolded", "CWKCF"],
  ["Changes_When_Titlecased", "CWT"], ["Changes_When_Uppercased", "CWU"], ["Dash"],
  ["Default_Ignorable_Code_Point", "DI"], ["Deprecated", "Dep"], ["Diacritic", "Dia"],
  ["Emoji"], ["Emoji_Component", "EComp"], ["Emoji_Modifier", "EMod"],
  ["Emoji_Modifier_Base", "EBase"], ["Emoji_Presentation", "EPres"],
  ["Extended_Pictographic", "ExtPict"], ["Extender", "Ext"], ["Grapheme_Base", "Gr_Base"],
  ["Grapheme_Extend", "Gr_Ext"], ["Hex_Digit", "Hex"], ["IDS_Binary_Operator", "IDSB"],
  ["IDS_Trinary_Operator", "IDST"], ["ID_Continue", "IDC"], ["ID_Start", "IDS"],
  ["Ideographic", "Ideo"], ["Join_Control", "Join_C"], ["Logical_Order_Exception", "LOE"],
  ["Lowercase", "Lower"], ["Math"], ["Noncharacter_Code_Point", "NChar"],
  ["Pattern_Syntax", "Pat_Syn"], ["Pattern_White_Space", "Pat_WS"], ["Quotation_Mark", "QMark"],
  ["Radical"], ["Regional_Indicator", "RI"], ["Sentence_Terminal", "STerm"],
  ["Soft_Dotted", "SD"], ["Terminal_Punctuation", "Term"], ["Unified_Ideograph", "UIdeo"],
  ["Uppercase", "Upper"], ["Variation_Selector", "VS"], ["White_Space", "space"],
  ["XID_Continue", "XIDC"], ["XID_Start", "XIDS"],
];

const scripts = [
  ["Adlm", "Adlam"],
  ["Aghb", "Caucasian_Albanian"],
  ["Ahom", "Ahom"],
  ["Arab", "Arabic"],
  ["Armi", "Imperial_Aramaic"],
  ["Armn", "Armenian"],
  ["Avst", "Avestan"],
  ["Bali", "Balinese"],
  ["Bamu", "Bamum"],
  ["Bass", "Bassa_Vah"],
  ["Batk", "Batak"],
  ["Beng", "Bengali"],
  ["Bhks", "Bhaiksuki"],
  ["Bopo", "Bopomofo"],
  ["Brah", "Brahmi"],
  ["Brai", "Braille"],
  ["Bugi", "Buginese"],
  ["Buhd", "Buhid"],
  ["Cakm", "Chakma"],
  ["Cans", "Canadian_Aboriginal"],
  ["Cari", "Carian"],
  ["Cham", "Cham"],
  ["Cher", "Cherokee"],
  ["Chrs", "Chorasmian"],
  ["Copt", "Coptic", "Qaac"],
  ["Cpmn", "Cypro_Minoan"],
  ["Cprt", "Cypriot"],
  ["Cyrl", "Cyrillic"],
  ["Deva", "Devanagari"],
  ["Diak", "Dives_Akuru"],
  ["Dogr", "Dogra"],
  ["Dsrt", "Deseret"],
  ["Dupl", "Duployan"],
  ["Egyp", "Egyptian_Hieroglyphs"],
  ["Elba", "Elbasan"],
  ["Elym", "Elymaic"],
  ["Ethi", "Ethiopic"],
  ["Geor", "Georgian"],
  ["Glag", "Glagolitic"],
  ["Gong", "Gunjala_Gondi"],
  ["Gonm", "Masaram_Gondi"],
  ["Goth", "Gothic"],
  ["Gran", "Grantha"],
  ["Grek", "Greek"],
  ["Gujr", "Gujarati"],
  ["Guru", "Gurmukhi"],
  ["Hang", "Hangul"],
  ["Hani", "Han"],
  ["Hano", "Hanunoo"],
  ["Hatr", "Hatran"],
  ["Hebr", "Hebrew"],
  ["Hira", "Hiragana"],
  ["Hluw", "Anatolian_Hieroglyphs"],
  ["Hmng", "Pahawh_Hmong"],
  ["Hmnp", "Nyiakeng_Puachue_Hmong"],
  [],
  ["Hung", "Old_Hungarian"],
  ["Ital", "Old_Italic"],
  ["Java", "Javanese"],
  ["Kali", "Kayah_Li"],
  ["Kana", "Katakana"],
  ["Khar", "Kharoshthi"],
  ["Khmr", "Khmer"],
  ["Khoj", "Khojki"],
  ["Kits", "Khitan_Small_Script"],
  ["Knda", "Kannada"],
  ["Kthi", "Kaithi"],
  ["Lana", "Tai_Tham"],
  ["Laoo", "Lao"],
  ["Latn", "Latin"],
  ["Lepc", "Lepcha"],
  ["Limb", "Limbu"],
  ["Lina", "Linear_A"],
  ["Linb", "Linear_B"],
  ["Lisu", "Lisu"],
  ["Lyci", "Lycian"],
  ["Lydi", "Lydian"],
  ["Mahj", "Mahajani"],
  ["Maka", "Makasar"],
  ["Mand", "Mandaic"],
  ["Mani", "Manichaean"],
  ["Marc", "Marchen"],
  ["Medf", "Medefaidrin"],
  ["Mend", "Mende_Kikakui"],
  ["Merc", "Meroitic_Cursive"],
  ["Mero", "Meroitic_Hieroglyphs"],
  ["Mlym", "Malayalam"],
  ["Modi", "Modi"],
  ["Mong", "Mongolian"],
  ["Mroo", "Mro"],
  ["Mtei", "Meetei_Mayek"],
  ["Mult", "Multani"],
  ["Mymr", "Myanmar"],
  ["Nand", "Nandinagari"],
  ["Narb", "Old_North_Arabian"],
  ["Nbat", "Nabataean"],
  ["Newa", "Newa"],
  ["Nkoo", "Nko"],
  ["Nshu", "Nushu"],
  ["Ogam", "Ogham"],
  ["Olck", "Ol_Chiki"],
  ["Orkh", "Old_Turkic"],
  ["Orya", "Oriya"],
  ["Osge", "Osage"],
  ["Osma", "Osmanya"],
  ["Ougr", "Old_Uyghur"],
  ["Palm", "Palmyrene"],
  ["Pauc", "Pau_Cin_Hau"],
  ["Perm", "Old_Permic"],
  ["Phag", "Phags_Pa"],
  ["Phli", "Inscriptional_Pahlavi"],
  ["Phlp", "Psalter_Pahlavi"],
  ["Phnx", "Phoenician"],
  ["Plrd", "Miao"],
  ["Prti", "Inscriptional_Parthian"],
  ["Rjng", "Rejang"],
  ["Rohg", "Hanifi_Rohingya"],
  ["Runr", "Runic"],
  ["Samr", "Samaritan"],
  ["Sarb", "Old_South_Arabian"],
  ["Saur", "Saurashtra"],
  ["Sgnw", "SignWriting"],
  ["Shaw", "Shavian"],
  ["Shrd", "Sharada"],
  ["Sidd", "Siddham"],
  ["Sind", "Khudawadi"],
  ["Sinh", "Sinhala"],
  ["Sogd", "Sogdian"],
  ["Sogo", "Old_Sogdian"],
  ["Sora", "Sora_Sompeng"],
  ["Soyo", "Soyombo"],
  ["Sund", "Sundanese"],
  ["Sylo", "Syloti_Nagri"],
  ["Syrc", "Syriac"],
  ["Tagb", "Tagbanwa"],
  ["Takr", "Takri"],
  ["Tale", "Tai_Le"],
  ["Talu", "New_Tai_Lue"],
  ["Taml", "Tamil"],
  ["Tang", "Tangut"],
  ["Tavt", "Tai_Viet"],
  ["Telu", "Telugu"],
  ["Tfng", "Tifinagh"],
  ["Tglg", "Tagalog"],
  ["Thaa", "Thaana"],
  ["Thai", "Thai"],
  ["Tibt", "Tibetan"],
  ["Tirh", "Tirhuta"],
  ["Tnsa", "Tangsa"],
  ["Toto", "Toto"],
  ["Ugar", "Ugaritic"],
  ["Vaii", "Vai"],
  ["Vith", "Vithkuqi"],
  ["Wara", "Warang_Citi"],
  ["Wcho", "Wancho"],
  ["Xpeo", "Old_Persian"],
  ["Xsux", "Cuneiform"],
  ["Yezi", "Yezidi"],
  ["Yiii", "Yi"],
  ["Zanb", "Zanabazar_Square"],
  ["Zinh", "Inherited", "Qaai"],
  ["Zyyy", "Common"],
  ["Zzzz", "Unknown"],
  // Added after Unicode 14 (kept only where node knows them).
  ["Kawi", "Kawi"], ["Nagm", "Nag_Mundari"], ["Gara", "Garay"], ["Gukh", "Gurung_Khema"],
  ["Krai", "Kirat_Rai"], ["Onao", "Ol_Onal"], ["Sunu", "Sunuwar"], ["Todr", "Todhri"],
  ["Tutg", "Tulu_Tigalari"], ["Berf", "Beria_Erfe"], ["Chis", "Chisoi"], ["Sidt", "Sidetic"],
  ["Tayo", "Tai_Yo"], ["Tols", "Tolong_Siki"],
];

function accepts(body) {
  try { new RegExp(`\\p{${body}}`, "u"); return true; } catch { return false; }
}

// Every code point except surrogates, in order, and the UTF-16 offset → code point map.
const points = [];
for (let c = 0; c <= 0x10ffff; c++) if (c < 0xd800 || c > 0xdfff) points.push(c);
const all = points.map((c) => String.fromCodePoint(c)).join("");
const offsetToPoint = new Int32Array(all.length);
{
  let off = 0;
  for (const c of points) { offsetToPoint[off] = c; off += c > 0xffff ? 2 : 1; }
}

function ranges(body) {
  const inSet = new Uint8Array(0x110000);
  for (const m of all.matchAll(new RegExp(`\\p{${body}}+`, "gu"))) {
    const end = m.index + m[0].length;
    for (let off = m.index; off < end; off += offsetToPoint[off] > 0xffff ? 2 : 1) inSet[offsetToPoint[off]] = 1;
  }
  const single = new RegExp(`^\\p{${body}}$`, "u");
  for (let c = 0xd800; c <= 0xdfff; c++) if (single.test(String.fromCharCode(c))) inSet[c] = 1;
  const out = [];
  for (let c = 0; c <= 0x10ffff; c++) {
    if (!inSet[c]) continue;
    let e = c;
    while (e + 1 <= 0x10ffff && inSet[e + 1]) e++;
    out.push([c, e]);
    c = e;
  }
  return out;
}

// Ranges as alternating (gap, length - 1) numbers, each a little-endian base-32 varint in
// base64 digits (values 0-31 end a number, 32-63 continue it).
const digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
function encode(rs) {
  let s = "", prev = -1;
  const num = (v) => {
    do {
      const low = v & 31;
      v = Math.floor(v / 32);
      s += digits[v > 0 ? low + 32 : low];
    } while (v > 0);
  };
  for (const [lo, hi] of rs) { num(lo - prev - 1); num(hi - lo); prev = hi; }
  return s;
}

const lines = [];
function add(kind, allNames, body) {
  const names = [...new Set(allNames)];
  const ok = names.filter((n) => accepts(kind === "gc" || kind === "bin" ? n : `${kind === "sc" ? "Script" : "Script_Extensions"}=${n}`));
  if (ok.length === 0) return;
  lines.push(`${kind} ${ok.join(",")} ${encode(ranges(body(ok[0])))}`);
}
for (const names of generalCategories) add("gc", names, (n) => `General_Category=${n}`);
for (const names of binaryProperties) add("bin", names, (n) => n);
for (const names of scripts) add("sc", names, (n) => `Script=${n}`);
for (const names of scripts) add("scx", names, (n) => `Script_Extensions=${n}`);

const swift = `// Generated by Tests/regex/gen-unicode-tables.js with node ${process.version}
// (Unicode ${process.versions.unicode}). Do not edit: regenerate.

/// One line per property: kind (\`gc\`, \`bin\`, \`sc\`, \`scx\`), the comma-separated names
/// ECMA-262 accepts for it, and its code point ranges (see \`UnicodeProperty.decode\`).
let unicodePropertyData = #"""
${lines.join("\n")}
"""#
`;
if (process.argv[2]) fs.writeFileSync(process.argv[2], swift); else process.stdout.write(swift);
