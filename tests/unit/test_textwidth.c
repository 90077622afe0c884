/* test_textwidth: display width of UTF-8 text (accented names precomposed and decomposed, CJK, Hangul, emoji, invalid bytes) and padding to a width. */
#include "textwidth.h"
#include "t.h"
#include "util.h"

static size_t w(const char *s)
{
    return textwidth(s, strlen(s));
}

static void ascii_and_latin(void)
{
    CHECK(w("") == 0);
    CHECK(w("Adams, Emma") == 11);
    CHECK(w("Zo\xc3\xab") == 3);                                  /* Zoë, precomposed: 4 bytes */
    CHECK(w("Zoe\xcc\x88") == 3);                                 /* Zoë, e + COMBINING DIAERESIS */
    CHECK(w("N\xc3\xba\xc3\xb1" "ez\xe2\x80\x93\xc5\x92uvre \xe2\x82\xac") == 13); /* Núñez–Œuvre € */
    CHECK(w("\xc3\x98yvind-\xc4\x86osi\xc4\x87") == 12);         /* Øyvind-Ćosić */
    CHECK(w("\xce\xa0\xce\xb1\xcf\x80\xce\xb1\xce\xb4\xcf\x8c\xcf\x80\xce\xbf\xcf\x85\xce\xbb\xce\xbf\xcf\x82") == 12); /* Παπαδόπουλος */
    CHECK(w("\xd0\x98\xd0\xb1\xd1\x80\xd0\xb0\xd0\xb3\xd0\xb8\xd0\xbc\xd0\xbe\xd0\xb2\xd0\xb0") == 10); /* Ибрагимова */
    CHECK(w("\xc2\xad") == 1);                                    /* SOFT HYPHEN shows */
}

static void wide_and_zero(void)
{
    CHECK(w("\xe6\x9d\x8e-Zhang") == 8);                          /* 李-Zhang: 李 is 2 */
    CHECK(w("\xe7\x94\xb0\xe4\xb8\xad") == 4);                    /* 田中 */
    CHECK(w("\xea\xb9\x80\xeb\xaf\xbc\xec\xa4\x80") == 6);        /* 김민준 */
    CHECK(w("\xef\xbc\xa1") == 2);                                /* FULLWIDTH LATIN CAPITAL A */
    CHECK(w("\xef\xbd\xb1") == 1);                                /* HALFWIDTH KATAKANA A */
    CHECK(w("\xf0\x9f\x93\x9a") == 2);                            /* U+1F4DA BOOKS */
    CHECK(w("a\xe2\x80\x8d" "b") == 2);                           /* ZERO WIDTH JOINER */
    CHECK(w("\xe1\x84\x80\xe1\x85\xa1") == 2);                    /* Hangul L + medial V: one syllable */
    CHECK(w("a\tb") == 2);                                        /* controls take no column */
    CHECK(textwidth_cp(0x2FF) == 1 && textwidth_cp(0x300) == 0 && textwidth_cp(0x36F) == 0 &&
          textwidth_cp(0x370) == 1);
    CHECK(textwidth_cp(0x10FF) == 1 && textwidth_cp(0x1100) == 2 && textwidth_cp(0x115F) == 2 &&
          textwidth_cp(0x1160) == 0);
    CHECK(textwidth_cp(0x20000) == 2 && textwidth_cp(0x3FFFD) == 2 && textwidth_cp(0x10FFFF) == 1);
}

static void invalid_bytes(void)
{
    CHECK(w("a\xff" "b") == 3);          /* a lone invalid byte is one U+FFFD */
    CHECK(w("a\xc3") == 2);              /* a sequence cut off by the end */
    CHECK(w("\xe6\x9d") == 2);           /* two bytes of a three-byte one: two U+FFFD */
    CHECK(w("\xc0\xaf") == 2);           /* overlong */
    CHECK(w("\xed\xa0\x80") == 3);       /* a surrogate */
    CHECK(textwidth_str(NULL) == 0);
    CHECK(textwidth_str("Zo\xc3\xab") == 3);
}

static void padding(void)
{
    strbuf sb;
    sb_init(&sb);
    CHECK(textwidth_pad(&sb, "Zo\xc3\xab", 6) == 0);
    CHECK_STR(sb_str(&sb), "Zo\xc3\xab   ");
    sb_reset(&sb);
    CHECK(textwidth_pad(&sb, "\xe6\x9d\x8e-Zhang", 10) == 0); /* 8 columns: two spaces */
    CHECK_STR(sb_str(&sb), "\xe6\x9d\x8e-Zhang  ");
    sb_reset(&sb);
    CHECK(textwidth_pad(&sb, "Adams", 3) == 0); /* wider than asked: as it is */
    CHECK_STR(sb_str(&sb), "Adams");
    sb_reset(&sb);
    CHECK(textwidth_pad(&sb, NULL, 2) == 0);
    CHECK_STR(sb_str(&sb), "  ");
    sb_reset(&sb);
    CHECK(textwidth_pad(&sb, "x", 100) == 0); /* more spaces than one append holds */
    CHECK(sb.len == 100 && w(sb_str(&sb)) == 100);
    sb_free(&sb);
}

int main(void)
{
    T_RUN(ascii_and_latin);
    T_RUN(wide_and_zero);
    T_RUN(invalid_bytes);
    T_RUN(padding);
    T_END();
}
