/* ing_detect: what a document is (kind, binary or not, domain, code language), from its name
 * and its first bytes. Every rule lives in a table below (STYLE rule 7); the functions only
 * walk them. Names are matched case-insensitively unless a table says otherwise. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "../core/tm_doc.h"
#include "ing_internal.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ASCII classes, independent of the process locale. */
static int is_alpha(unsigned char c)
{
    return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static inline int is_ident(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || c == '_';
}

/* ---- Eight bytes at a time --------------------------------------------------------------- */

/* The scans below test eight bytes per step in a uint64_t ("SWAR"): a lane is one byte, and a
 * lane mask has 0x80 set in each lane where a test holds. Plain C, so every host gives the same
 * answers; the per-byte loops they replace cost most of ingest's time on prose. */
#define LANES_01 0x0101010101010101ull
#define LANES_7F 0x7f7f7f7f7f7f7f7full
#define LANES_80 0x8080808080808080ull

/* Lane k is p[k] on every host; compilers turn this into one load. */
static inline uint64_t load_lanes(const unsigned char *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
}

/* The first four bytes, p[0] lowest, as load_lanes(). */
static inline uint32_t load_lanes4(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Lanes of a (every lane < 0x80) that are >= c, for 1 <= c <= 0x80: no carry leaves a lane. */
static inline uint64_t lanes_ge(uint64_t a, unsigned c)
{
    return (a + (0x80u - c) * LANES_01) & LANES_80;
}

/* Lanes of v that are zero, exactly (no borrow between lanes, unlike the classic haszero). */
static inline uint64_t lanes_zero(uint64_t v)
{
    return ~(((v & LANES_7F) + LANES_7F) | v) & LANES_80;
}

/* Lanes of v equal to c. */
static inline uint64_t lanes_eq(uint64_t v, unsigned char c)
{
    return lanes_zero(v ^ (uint64_t)c * LANES_01);
}

/* Number of lanes set in a lane mask. */
static inline unsigned lanes_count(uint64_t mask)
{
    return (unsigned)(((mask >> 7) * LANES_01) >> 56);
}

/* Index of the lowest lane set in a non-zero lane mask (a multiply instead of a count-trailing-
 * zeros builtin, which not every compiler has). */
static inline unsigned lanes_first(uint64_t mask)
{
    return (unsigned)((((mask & (~mask + 1)) >> 7) * 0x0001020304050607ull) >> 56);
}

/* ---- Name helpers ------------------------------------------------------------------------ */

/* Case-insensitive "name[0..len) ends with suf". */
static int ends_with_ci(const char *name, size_t len, const char *suf)
{
    size_t k = strlen(suf);
    return len >= k && strncasecmp(name + len - k, suf, k) == 0;
}

/* The base name (after the last '/') of name[0..len). */
static const char *base_name(const char *name, size_t len, size_t *blen)
{
    const char *b = name;
    for (size_t i = 0; i < len; i++)
        if (name[i] == '/')
            b = name + i + 1;
    *blen = len - (size_t)(b - name);
    return b;
}

/* The extension of a base name without its dot, or NULL ("Makefile", ".bashrc"). */
static const char *extension(const char *base, size_t blen, size_t *elen)
{
    for (size_t i = blen; i > 1; i--) {
        if (base[i - 1] == '.') {
            *elen = blen - i;
            return *elen ? base + i : NULL;
        }
    }
    return NULL;
}

/* ---- Compression and archive names ------------------------------------------------------- */

/* Suffixes of single-stream compressors that libarchive's raw reader undoes. ".Z" (compress)
 * is case-sensitive: ".z" was pack(1), which nothing reads any more. */
static const struct {
    const char *suf;
    int exact_case;
} compression_suffixes[] = {
    {".gz", 0}, {".zst", 0}, {".xz", 0}, {".bz2", 0}, {".lz4", 0}, {".lzma", 0}, {".Z", 1},
};

size_t ing_strip_compression(const char *name, size_t len)
{
    for (size_t i = 0; i < ARRAY_LEN(compression_suffixes); i++) {
        const char *suf = compression_suffixes[i].suf;
        size_t k = strlen(suf);
        if (len <= k) /* ".gz" alone is a hidden file, not a compressed empty name */
            continue;
        int hit = compression_suffixes[i].exact_case ? memcmp(name + len - k, suf, k) == 0
                                                     : ends_with_ci(name, len, suf);
        if (hit)
            return len - k;
    }
    return len;
}

/* Archive suffixes other than ".tar.<compression>", which is ".tar" after stripping. */
static const char *const archive_suffixes[] = {
    ".tar", ".tgz", ".tbz", ".tbz2", ".txz", ".tzst", ".tlz", ".zip", ".7z", ".cpio",
};

int ing_is_archive_name(const char *name)
{
    if (!name)
        return 0;
    size_t len = ing_strip_compression(name, strlen(name));
    for (size_t i = 0; i < ARRAY_LEN(archive_suffixes); i++)
        if (ends_with_ci(name, len, archive_suffixes[i]))
            return 1;
    return 0;
}

/* ---- Kinds ------------------------------------------------------------------------------- */

/* Kind by extension. BINARY lists formats we know hold no text worth keeping (media, objects,
 * model weights, office containers) so they are skipped without reading them as text. */
static const struct {
    const char *ext;
    enum ing_kind kind;
} kind_exts[] = {
    {"jsonl", ING_KIND_JSONL},   {"ndjson", ING_KIND_JSONL}, {"json-lines", ING_KIND_JSONL},
    {"warc", ING_KIND_WARC},     {"html", ING_KIND_HTML},    {"htm", ING_KIND_HTML},
    {"xhtml", ING_KIND_HTML},    {"shtml", ING_KIND_HTML},   {"man", ING_KIND_ROFF},
    {"mdoc", ING_KIND_ROFF},     {"png", ING_KIND_BINARY},   {"jpg", ING_KIND_BINARY},
    {"jpeg", ING_KIND_BINARY},   {"gif", ING_KIND_BINARY},   {"bmp", ING_KIND_BINARY},
    {"ico", ING_KIND_BINARY},    {"tif", ING_KIND_BINARY},   {"tiff", ING_KIND_BINARY},
    {"webp", ING_KIND_BINARY},   {"psd", ING_KIND_BINARY},   {"heic", ING_KIND_BINARY},
    {"o", ING_KIND_BINARY},      {"obj", ING_KIND_BINARY},   {"a", ING_KIND_BINARY},
    {"so", ING_KIND_BINARY},     {"dylib", ING_KIND_BINARY}, {"dll", ING_KIND_BINARY},
    {"exe", ING_KIND_BINARY},    {"lib", ING_KIND_BINARY},   {"class", ING_KIND_BINARY},
    {"jar", ING_KIND_BINARY},    {"war", ING_KIND_BINARY},   {"pyc", ING_KIND_BINARY},
    {"pyo", ING_KIND_BINARY},    {"wasm", ING_KIND_BINARY},  {"whl", ING_KIND_BINARY},
    {"deb", ING_KIND_BINARY},    {"rpm", ING_KIND_BINARY},   {"apk", ING_KIND_BINARY},
    {"iso", ING_KIND_BINARY},    {"dmg", ING_KIND_BINARY},   {"img", ING_KIND_BINARY},
    {"bin", ING_KIND_BINARY},    {"mp3", ING_KIND_BINARY},   {"mp4", ING_KIND_BINARY},
    {"m4a", ING_KIND_BINARY},    {"wav", ING_KIND_BINARY},   {"ogg", ING_KIND_BINARY},
    {"flac", ING_KIND_BINARY},   {"avi", ING_KIND_BINARY},   {"mkv", ING_KIND_BINARY},
    {"mov", ING_KIND_BINARY},    {"webm", ING_KIND_BINARY},  {"ttf", ING_KIND_BINARY},
    {"otf", ING_KIND_BINARY},    {"woff", ING_KIND_BINARY},  {"woff2", ING_KIND_BINARY},
    {"eot", ING_KIND_BINARY},    {"pdf", ING_KIND_BINARY},   {"doc", ING_KIND_BINARY},
    {"docx", ING_KIND_BINARY},   {"xls", ING_KIND_BINARY},   {"xlsx", ING_KIND_BINARY},
    {"ppt", ING_KIND_BINARY},    {"pptx", ING_KIND_BINARY},  {"odt", ING_KIND_BINARY},
    {"sqlite", ING_KIND_BINARY}, {"db", ING_KIND_BINARY},    {"mdb", ING_KIND_BINARY},
    {"npy", ING_KIND_BINARY},    {"npz", ING_KIND_BINARY},   {"pt", ING_KIND_BINARY},
    {"pth", ING_KIND_BINARY},    {"ckpt", ING_KIND_BINARY},  {"safetensors", ING_KIND_BINARY},
    {"h5", ING_KIND_BINARY},     {"pkl", ING_KIND_BINARY},   {"parquet", ING_KIND_BINARY},
    {"onnx", ING_KIND_BINARY},   {"arrow", ING_KIND_BINARY},
};

/* Man page sections are "1".."9" optionally followed by a letter suffix ("3pm", "1ssl", "3x");
 * the longest suffix in Debian's /usr/share/man is 5 letters, 8 leaves room. */
#define MAN_SUFFIX_MAX 8

static int is_man_extension(const char *ext, size_t elen)
{
    if (elen == 0 || elen > 1 + MAN_SUFFIX_MAX || ext[0] < '1' || ext[0] > '9')
        return 0;
    for (size_t i = 1; i < elen; i++)
        if (!is_alpha((unsigned char)ext[i]))
            return 0;
    return 1;
}

/* How a kind announces itself in the first bytes. HTML may be preceded by whitespace and a
 * byte order mark, and its doctype is case-insensitive; WARC and roff are exact. */
static const struct {
    const char *magic;
    int html; /* case-insensitive, after leading blanks */
    enum ing_kind kind;
} kind_heads[] = {
    {"WARC/", 0, ING_KIND_WARC}, {"<!DOCTYPE html", 1, ING_KIND_HTML},
    {"<html", 1, ING_KIND_HTML}, {".TH", 0, ING_KIND_ROFF},
    {".Dd", 0, ING_KIND_ROFF},   {".\\\"", 0, ING_KIND_ROFF},
    {"'\\\"", 0, ING_KIND_ROFF},
};

enum ing_kind ing_kind_detect(const char *name, size_t name_len, const char *head, size_t n)
{
    size_t blen, elen;
    const char *base = base_name(name ? name : "", name ? name_len : 0, &blen);
    const char *ext = extension(base, blen, &elen);
    if (ext) {
        for (size_t i = 0; i < ARRAY_LEN(kind_exts); i++)
            if (strlen(kind_exts[i].ext) == elen && strncasecmp(ext, kind_exts[i].ext, elen) == 0)
                return kind_exts[i].kind;
        if (is_man_extension(ext, elen))
            return ING_KIND_ROFF;
    }
    /* A source file is text whatever it starts with; ing_lang_from_name is below. */
    if (!head || (name && ing_lang_from_name(name, name_len)))
        return ING_KIND_TEXT;
    const char *h = head;
    size_t hn = n;
    if (hn >= 3 && memcmp(h, "\xef\xbb\xbf", 3) == 0) {
        h += 3;
        hn -= 3;
    }
    size_t skip = 0;
    while (skip < hn && is_space((unsigned char)h[skip]))
        skip++;
    for (size_t i = 0; i < ARRAY_LEN(kind_heads); i++) {
        const char *m = kind_heads[i].magic;
        size_t k = strlen(m);
        if (kind_heads[i].html) {
            if (hn - skip >= k && strncasecmp(h + skip, m, k) == 0)
                return kind_heads[i].kind;
        } else if (n >= k && memcmp(head, m, k) == 0) {
            return kind_heads[i].kind;
        }
    }
    return ING_KIND_TEXT;
}

/* ---- Binary ------------------------------------------------------------------------------ */

/* File signatures at a fixed offset (from each format's specification). Short or textual-looking
 * ones carry enough bytes to be unambiguous: bzip2 includes its block magic (digits of pi),
 * ID3 its version byte. */
static const struct {
    size_t off, len;
    const char *magic;
} binary_magics[] = {
    {0, 4,
     "\x7f"
     "ELF"},
    {0, 8, "\x89PNG\r\n\x1a\n"},
    {0, 3, "\xff\xd8\xff"},
    {0, 6, "GIF87a"},
    {0, 6, "GIF89a"},
    {0, 5, "%PDF-"},
    {0, 4, "PK\x03\x04"},
    {0, 4, "PK\x05\x06"},
    {0, 4, "PK\x07\x08"},
    {0, 2, "\x1f\x8b"},
    {0, 4, "\x28\xb5\x2f\xfd"},
    {0, 6,
     "\xfd"
     "7zXZ\0"},
    {0, 6, "7z\xbc\xaf\x27\x1c"},
    {4, 6, "1AY&SY"}, /* bzip2 block header after "BZh<level>" */
    {0, 4, "\x04\x22\x4d\x18"},
    {0, 4, "\xfe\xed\xfa\xce"},
    {0, 4, "\xfe\xed\xfa\xcf"},
    {0, 4, "\xce\xfa\xed\xfe"},
    {0, 4, "\xcf\xfa\xed\xfe"},
    {0, 4, "\xca\xfe\xba\xbe"},
    {0, 4, "\0asm"},
    {0, 16, "SQLite format 3\0"},
    {0, 4, "OggS"},
    {0, 4, "fLaC"},
    {4, 4, "ftyp"},
    {0, 4, "II*\0"},
    {0, 4, "MM\0*"},
    {0, 4, "wOFF"},
    {0, 4, "wOF2"},
    {0, 8, "!<arch>\n"},
    {0, 6, "\x93NUMPY"},
    {0, 4, "PAR1"},
    {0, 6, "Rar!\x1a\x07"},
    {0, 4, "\0\0\1\0"}, /* ICO */
    {257, 5, "ustar"},
};

/* Only the first 8 KiB decide: git's buffer_is_binary() trusts its first 8,000 bytes, and a
 * bounded sample keeps the cost per member negligible next to decompression. */
#define BINARY_SAMPLE (8 * 1024)
/* More than one control byte in ten is not text in any encoding we read (UTF-16 fails here,
 * which is what we want: it would need conversion we do not do). */
#define BINARY_CTRL_DIVISOR 10

/* Bytes that make a sample look binary: NUL and the C0 controls text does not use. Tab, LF,
 * VT, FF, CR and ESC (ANSI colours in logs) are allowed. */
static int is_binary_ctrl(unsigned char c)
{
    return c < 0x20 && c != '\t' && c != '\n' && c != '\v' && c != '\f' && c != '\r' && c != 0x1b;
}

/* is_binary_ctrl() for eight lanes at once. */
static inline uint64_t lanes_binary_ctrl(uint64_t v)
{
    uint64_t a = v & LANES_7F;
    uint64_t below_space = ~lanes_ge(a, 0x20) & ~v & LANES_80;
    uint64_t blank = lanes_ge(a, '\t') & ~lanes_ge(a, '\r' + 1); /* \t \n \v \f \r */
    return below_space & ~blank & ~lanes_eq(v, 0x1b);
}

int ing_is_binary(const unsigned char *p, size_t n)
{
    if (!p || n == 0)
        return 0;
    for (size_t i = 0; i < ARRAY_LEN(binary_magics); i++) {
        size_t off = binary_magics[i].off, len = binary_magics[i].len;
        if (n >= off + len && memcmp(p + off, binary_magics[i].magic, len) == 0) {
            if (off == 4 && len == 6 && memcmp(p, "BZh", 3) != 0)
                continue;
            return 1;
        }
    }
    /* A PE executable: "MZ" and a header offset that points at "PE\0\0". */
    if (n >= 0x40 && p[0] == 'M' && p[1] == 'Z') {
        uint32_t pe = (uint32_t)p[0x3c] | (uint32_t)p[0x3d] << 8 | (uint32_t)p[0x3e] << 16 |
                      (uint32_t)p[0x3f] << 24;
        if (pe <= n - 4 && memcmp(p + pe, "PE\0\0", 4) == 0)
            return 1;
    }
    size_t m = n < BINARY_SAMPLE ? n : BINARY_SAMPLE;
    size_t ctrl = 0, i = 0;
    for (; i + 8 <= m; i += 8)
        ctrl += lanes_count(lanes_binary_ctrl(load_lanes(p + i)));
    for (; i < m; i++)
        ctrl += (size_t)is_binary_ctrl(p[i]);
    return ctrl * BINARY_CTRL_DIVISOR > m;
}

/* ---- Language by name -------------------------------------------------------------------- */

/* Whole base names that say the language. Matched exactly first, then case-insensitively. */
static const struct {
    const char *name, *lang;
} lang_bases[] = {
    {"Makefile", "make"},
    {"GNUmakefile", "make"},
    {"Makefile.am", "make"},
    {"Makefile.in", "make"},
    {"Kbuild", "make"},
    {"CMakeLists.txt", "cmake"},
    {"Dockerfile", "dockerfile"},
    {"Containerfile", "dockerfile"},
    {"meson.build", "meson"},
    {"meson_options.txt", "meson"},
    {"configure.ac", "autoconf"},
    {"configure.in", "autoconf"},
    {"Kconfig", "kconfig"},
    {"Rakefile", "ruby"},
    {"Gemfile", "ruby"},
    {"Vagrantfile", "ruby"},
    {"SConstruct", "python"},
    {"SConscript", "python"},
    {"wscript", "python"},
    {"Jenkinsfile", "groovy"},
    {"PKGBUILD", "shell"},
    {"APKBUILD", "shell"},
    {".bashrc", "shell"},
    {".bash_profile", "shell"},
    {".profile", "shell"},
    {".zshrc", "shell"},
    {".vimrc", "vim"},
    {".emacs", "emacs-lisp"},
};

/* Extensions. Matched exactly first (".C" and ".H" are C++ by Unix convention), then
 * case-insensitively (".PY"). */
static const struct {
    const char *ext, *lang;
} lang_exts[] = {
    {"c", "c"},
    {"h", "c"},
    {"C", "cpp"},
    {"H", "cpp"},
    {"cc", "cpp"},
    {"cpp", "cpp"},
    {"cxx", "cpp"},
    {"c++", "cpp"},
    {"hpp", "cpp"},
    {"hh", "cpp"},
    {"hxx", "cpp"},
    {"h++", "cpp"},
    {"ipp", "cpp"},
    {"tpp", "cpp"},
    {"txx", "cpp"},
    {"inl", "cpp"},
    {"ino", "cpp"},
    {"cu", "cuda"},
    {"cuh", "cuda"},
    {"py", "python"},
    {"pyi", "python"},
    {"pyw", "python"},
    {"pyx", "cython"},
    {"pxd", "cython"},
    {"js", "javascript"},
    {"mjs", "javascript"},
    {"cjs", "javascript"},
    {"jsx", "javascript"},
    {"ts", "typescript"},
    {"tsx", "typescript"},
    {"mts", "typescript"},
    {"cts", "typescript"},
    {"go", "go"},
    {"rs", "rust"},
    {"java", "java"},
    {"kt", "kotlin"},
    {"kts", "kotlin"},
    {"scala", "scala"},
    {"sc", "scala"},
    {"groovy", "groovy"},
    {"gradle", "groovy"},
    {"rb", "ruby"},
    {"rake", "ruby"},
    {"gemspec", "ruby"},
    {"pl", "perl"},
    {"pm", "perl"},
    {"php", "php"},
    {"phtml", "php"},
    {"sh", "shell"},
    {"bash", "shell"},
    {"zsh", "shell"},
    {"ksh", "shell"},
    {"fish", "fish"},
    {"ps1", "powershell"},
    {"psm1", "powershell"},
    {"bat", "batch"},
    {"cmd", "batch"},
    {"lua", "lua"},
    {"r", "r"},
    {"jl", "julia"},
    {"swift", "swift"},
    {"m", "objective-c"},
    {"mm", "objective-c"},
    {"cs", "csharp"},
    {"fs", "fsharp"},
    {"fsx", "fsharp"},
    {"fsi", "fsharp"},
    {"vb", "visual-basic"},
    {"hs", "haskell"},
    {"lhs", "haskell"},
    {"ml", "ocaml"},
    {"mli", "ocaml"},
    {"ex", "elixir"},
    {"exs", "elixir"},
    {"erl", "erlang"},
    {"hrl", "erlang"},
    {"clj", "clojure"},
    {"cljs", "clojure"},
    {"cljc", "clojure"},
    {"lisp", "common-lisp"},
    {"lsp", "common-lisp"},
    {"scm", "scheme"},
    {"ss", "scheme"},
    {"rkt", "racket"},
    {"el", "emacs-lisp"},
    {"elm", "elm"},
    {"dart", "dart"},
    {"sql", "sql"},
    {"cmake", "cmake"},
    {"mk", "make"},
    {"mak", "make"},
    {"asm", "assembly"},
    {"s", "assembly"},
    {"S", "assembly"},
    {"f", "fortran"},
    {"for", "fortran"},
    {"f77", "fortran"},
    {"f90", "fortran"},
    {"f95", "fortran"},
    {"f03", "fortran"},
    {"f08", "fortran"},
    {"pas", "pascal"},
    {"d", "d"},
    {"zig", "zig"},
    {"nim", "nim"},
    {"nims", "nim"},
    {"vim", "vim"},
    {"tcl", "tcl"},
    {"awk", "awk"},
    {"sed", "sed"},
    {"proto", "protobuf"},
    {"thrift", "thrift"},
    {"css", "css"},
    {"scss", "css"},
    {"less", "css"},
    {"vue", "vue"},
    {"svelte", "svelte"},
    {"glsl", "glsl"},
    {"hlsl", "hlsl"},
    {"sol", "solidity"},
    {"nix", "nix"},
    {"tf", "terraform"},
    {"hcl", "terraform"},
    {"ada", "ada"},
    {"adb", "ada"},
    {"ads", "ada"},
    {"cob", "cobol"},
    {"cbl", "cobol"},
    {"m4", "m4"},
    {"y", "yacc"},
    {"l", "lex"},
    {"sv", "systemverilog"},
    {"svh", "systemverilog"},
    {"vhd", "vhdl"},
    {"vhdl", "vhdl"},
    {"pro", "prolog"},
};

/* Extensions of prose and markup: a name with one of these is not code even when its content
 * quotes code (a README.md with C examples stays text). Used by ing_detect_domain. */
static const char *const prose_exts[] = {
    "txt", "md", "markdown", "rst", "tex", "ltx", "adoc", "asciidoc", "org", "text", "texi",
};

const char *ing_lang_from_name(const char *name, size_t len)
{
    if (!name || len == 0)
        return NULL;
    size_t blen, elen;
    const char *base = base_name(name, len, &blen);
    for (int ci = 0; ci < 2; ci++) {
        for (size_t i = 0; i < ARRAY_LEN(lang_bases); i++) {
            const char *b = lang_bases[i].name;
            if (strlen(b) == blen &&
                (ci ? strncasecmp(base, b, blen) == 0 : memcmp(base, b, blen) == 0))
                return lang_bases[i].lang;
        }
    }
    /* "Dockerfile.dev", "Dockerfile-alpine". */
    if (blen > 10 && memcmp(base, "Dockerfile", 10) == 0 && (base[10] == '.' || base[10] == '-'))
        return "dockerfile";
    const char *ext = extension(base, blen, &elen);
    if (!ext)
        return NULL;
    for (int ci = 0; ci < 2; ci++) {
        for (size_t i = 0; i < ARRAY_LEN(lang_exts); i++) {
            const char *e = lang_exts[i].ext;
            if (strlen(e) == elen &&
                (ci ? strncasecmp(ext, e, elen) == 0 : memcmp(ext, e, elen) == 0))
                return lang_exts[i].lang;
        }
    }
    return NULL;
}

static int is_prose_name(const char *name, size_t len)
{
    size_t blen, elen;
    const char *base = base_name(name, len, &blen);
    const char *ext = extension(base, blen, &elen);
    if (!ext)
        return 0;
    for (size_t i = 0; i < ARRAY_LEN(prose_exts); i++)
        if (strlen(prose_exts[i]) == elen && strncasecmp(ext, prose_exts[i], elen) == 0)
            return 1;
    return 0;
}

/* ---- Language by shebang ----------------------------------------------------------------- */

/* Interpreter names, after the directory and any version suffix ("python3.11" -> "python")
 * are removed. */
static const struct {
    const char *interp, *lang;
} shebangs[] = {
    {"sh", "shell"},          {"bash", "shell"},
    {"dash", "shell"},        {"zsh", "shell"},
    {"ksh", "shell"},         {"mksh", "shell"},
    {"ash", "shell"},         {"busybox", "shell"},
    {"csh", "csh"},           {"tcsh", "csh"},
    {"fish", "fish"},         {"python", "python"},
    {"pypy", "python"},       {"perl", "perl"},
    {"ruby", "ruby"},         {"node", "javascript"},
    {"nodejs", "javascript"}, {"deno", "javascript"},
    {"bun", "javascript"},    {"ts-node", "typescript"},
    {"php", "php"},           {"lua", "lua"},
    {"luajit", "lua"},        {"tclsh", "tcl"},
    {"wish", "tcl"},          {"awk", "awk"},
    {"gawk", "awk"},          {"mawk", "awk"},
    {"nawk", "awk"},          {"sed", "sed"},
    {"Rscript", "r"},         {"julia", "julia"},
    {"make", "make"},         {"pwsh", "powershell"},
    {"groovy", "groovy"},     {"scala", "scala"},
    {"elixir", "elixir"},     {"escript", "erlang"},
    {"runghc", "haskell"},    {"runhaskell", "haskell"},
    {"ocaml", "ocaml"},       {"guile", "scheme"},
    {"racket", "racket"},     {"sbcl", "common-lisp"},
    {"swift", "swift"},       {"dart", "dart"},
};

/* The first line is read up to this many bytes; real shebangs are short (Linux truncates at
 * 256 bytes, BINPRM_BUF_SIZE). */
#define SHEBANG_MAX 256

/* Reads the next word of s[*i..n): skips blanks, returns its start, sets *wlen. */
static const char *next_word(const char *s, size_t n, size_t *i, size_t *wlen)
{
    while (*i < n && (s[*i] == ' ' || s[*i] == '\t'))
        (*i)++;
    size_t st = *i;
    while (*i < n && s[*i] != ' ' && s[*i] != '\t')
        (*i)++;
    *wlen = *i - st;
    return s + st;
}

const char *ing_lang_from_shebang(const char *text, size_t n)
{
    if (!text || n < 3 || text[0] != '#' || text[1] != '!')
        return NULL;
    size_t end = 2;
    while (end < n && end < SHEBANG_MAX && text[end] != '\n' && text[end] != '\r')
        end++;
    size_t i = 2, wlen, blen;
    const char *w = next_word(text, end, &i, &wlen);
    const char *b = base_name(w, wlen, &blen);
    if (blen == 3 && memcmp(b, "env", 3) == 0) {
        /* "#!/usr/bin/env -S python3 -u", "#!/usr/bin/env VAR=1 node": the first word that is
         * neither an option nor an assignment. */
        for (;;) {
            w = next_word(text, end, &i, &wlen);
            if (wlen == 0)
                return NULL;
            if (w[0] != '-' && !memchr(w, '=', wlen))
                break;
        }
        b = base_name(w, wlen, &blen);
    }
    while (blen > 0 && (is_digit((unsigned char)b[blen - 1]) || b[blen - 1] == '.'))
        blen--;
    for (size_t k = 0; k < ARRAY_LEN(shebangs); k++)
        if (strlen(shebangs[k].interp) == blen && memcmp(b, shebangs[k].interp, blen) == 0)
            return shebangs[k].lang;
    return NULL;
}

/* ---- Language by content ----------------------------------------------------------------- */

/* Where a marker must sit: anywhere; at the start of a line after indentation; as a
 * preprocessor directive ('#', optional blanks, the word); or as the whole line. */
enum { AT_ANY, AT_LINE, AT_PP, AT_WHOLE };

/* Languages scored from content. C++ is scored as C markers plus its own (see below). */
enum {
    CL_C,
    CL_CPP,
    CL_PYTHON,
    CL_JS,
    CL_JAVA,
    CL_GO,
    CL_RUST,
    CL_SHELL,
    CL_RUBY,
    CL_PERL,
    CL_PHP,
    CL_SQL,
    CL_LUA,
    CL_MAKE,
    CL_COUNT
};

static const char *const content_lang_names[CL_COUNT] = {
    "c",     "cpp",  "python", "javascript", "java", "go",  "rust",
    "shell", "ruby", "perl",   "php",        "sql",  "lua", "make",
};

/* Strong markers: syntax that prose does not write. A marker that begins (ends) with a letter
 * must sit at a word boundary, so "itself." is not "self.". */
static const struct {
    unsigned char lang, at;
    const char *pat;
} markers[] = {
    {CL_C, AT_PP, "#include"},
    {CL_C, AT_PP, "#define"},
    {CL_C, AT_PP, "#ifdef"},
    {CL_C, AT_PP, "#ifndef"},
    {CL_C, AT_PP, "#endif"},
    {CL_C, AT_PP, "#if"},
    {CL_C, AT_PP, "#pragma"},
    {CL_C, AT_PP, "#undef"},
    {CL_C, AT_PP, "#else"},
    {CL_C, AT_PP, "#elif"},
    {CL_C, AT_LINE, "extern "},
    {CL_C, AT_ANY, "unsigned char"},
    {CL_C, AT_ANY, "uint8_t"},
    {CL_C, AT_ANY, "int64_t"},
    {CL_C, AT_ANY, "typedef"},
    {CL_C, AT_ANY, "sizeof("},
    {CL_C, AT_ANY, "->"},
    {CL_C, AT_ANY, "NULL"},
    {CL_C, AT_ANY, "int main("},
    {CL_C, AT_ANY, "return 0;"},
    {CL_C, AT_ANY, "unsigned int"},
    {CL_C, AT_ANY, "const char *"},
    {CL_C, AT_ANY, "static void"},
    {CL_C, AT_ANY, "static int"},
    {CL_C, AT_ANY, "void *"},
    {CL_C, AT_ANY, "size_t"},
    {CL_C, AT_ANY, "uint32_t"},
    {CL_C, AT_ANY, "malloc("},
    {CL_C, AT_ANY, "printf("},
    {CL_C, AT_LINE, "struct "},
    {CL_CPP, AT_ANY, "namespace"},
    {CL_CPP, AT_ANY, "template<"},
    {CL_CPP, AT_ANY, "template <"},
    {CL_CPP, AT_ANY, "std::"},
    {CL_CPP, AT_LINE, "public:"},
    {CL_CPP, AT_LINE, "private:"},
    {CL_CPP, AT_LINE, "protected:"},
    {CL_CPP, AT_ANY, "nullptr"},
    {CL_CPP, AT_LINE, "class "},
    {CL_CPP, AT_ANY, "virtual "},
    {CL_CPP, AT_ANY, "constexpr"},
    {CL_CPP, AT_ANY, "typename"},
    {CL_CPP, AT_ANY, "noexcept"},
    {CL_CPP, AT_ANY, "static_cast<"},
    {CL_CPP, AT_ANY, "cout <<"},
    {CL_PYTHON, AT_LINE, "def "},
    {CL_PYTHON, AT_LINE, "import "},
    {CL_PYTHON, AT_ANY, "self."},
    {CL_PYTHON, AT_ANY, "(self"},
    {CL_PYTHON, AT_ANY, "__init__"},
    {CL_PYTHON, AT_ANY, "__name__"},
    {CL_PYTHON, AT_LINE, "elif "},
    {CL_PYTHON, AT_WHOLE, "try:"},
    {CL_PYTHON, AT_WHOLE, "else:"},
    {CL_PYTHON, AT_LINE, "except "},
    {CL_PYTHON, AT_WHOLE, "except:"},
    {CL_PYTHON, AT_LINE, "raise "},
    {CL_PYTHON, AT_ANY, "lambda "},
    {CL_PYTHON, AT_ANY, "\"\"\""},
    {CL_PYTHON, AT_ANY, "print("},
    {CL_PYTHON, AT_ANY, "range("},
    {CL_PYTHON, AT_LINE, "with open("},
    {CL_JS, AT_ANY, "function("},
    {CL_JS, AT_LINE, "function "},
    {CL_JS, AT_ANY, "=>"},
    {CL_JS, AT_LINE, "const "},
    {CL_JS, AT_LINE, "let "},
    {CL_JS, AT_LINE, "var "},
    {CL_JS, AT_ANY, "console.log"},
    {CL_JS, AT_ANY, "require("},
    {CL_JS, AT_LINE, "export "},
    {CL_JS, AT_ANY, "document."},
    {CL_JS, AT_ANY, "==="},
    {CL_JS, AT_ANY, "!=="},
    {CL_JS, AT_ANY, "module.exports"},
    {CL_JS, AT_ANY, "undefined"},
    {CL_JS, AT_ANY, ".then("},
    {CL_JAVA, AT_LINE, "package "},
    {CL_JAVA, AT_LINE, "import java"},
    {CL_JAVA, AT_ANY, "public class"},
    {CL_JAVA, AT_ANY, "public static"},
    {CL_JAVA, AT_ANY, "private static"},
    {CL_JAVA, AT_ANY, "private final"},
    {CL_JAVA, AT_ANY, "public void"},
    {CL_JAVA, AT_ANY, "System.out"},
    {CL_JAVA, AT_LINE, "@Override"},
    {CL_JAVA, AT_ANY, "String[]"},
    {CL_JAVA, AT_ANY, "new ArrayList"},
    {CL_GO, AT_LINE, "package "},
    {CL_GO, AT_LINE, "func "},
    {CL_GO, AT_ANY, ":= "},
    {CL_GO, AT_ANY, "fmt."},
    {CL_GO, AT_LINE, "import ("},
    {CL_GO, AT_ANY, "err != nil"},
    {CL_GO, AT_ANY, "go func"},
    {CL_GO, AT_ANY, "[]string"},
    {CL_GO, AT_ANY, "interface{}"},
    {CL_RUST, AT_LINE, "fn "},
    {CL_RUST, AT_ANY, "let mut"},
    {CL_RUST, AT_ANY, "use std::"},
    {CL_RUST, AT_LINE, "impl"},
    {CL_RUST, AT_ANY, "pub fn"},
    {CL_RUST, AT_ANY, "println!"},
    {CL_RUST, AT_ANY, "&mut "},
    {CL_RUST, AT_ANY, "#[derive"},
    {CL_RUST, AT_ANY, "unwrap()"},
    {CL_RUST, AT_ANY, "&str"},
    {CL_RUST, AT_ANY, "pub struct"},
    {CL_RUST, AT_ANY, "-> Result<"},
    {CL_SHELL, AT_LINE, "if ["},
    {CL_SHELL, AT_ANY, "; then"},
    {CL_SHELL, AT_WHOLE, "fi"},
    {CL_SHELL, AT_WHOLE, "done"},
    {CL_SHELL, AT_ANY, "; do"},
    {CL_SHELL, AT_WHOLE, "esac"},
    {CL_SHELL, AT_ANY, "$("},
    {CL_SHELL, AT_ANY, "${"},
    {CL_SHELL, AT_LINE, "echo "},
    {CL_SHELL, AT_LINE, "export "},
    {CL_SHELL, AT_ANY, "2>&1"},
    {CL_SHELL, AT_ANY, "/dev/null"},
    {CL_SHELL, AT_LINE, "set -e"},
    {CL_SHELL, AT_ANY, "\"$@\""},
    {CL_SHELL, AT_LINE, "case "},
    {CL_SHELL, AT_LINE, "local "},
    {CL_RUBY, AT_LINE, "def "},
    {CL_RUBY, AT_WHOLE, "end"},
    {CL_RUBY, AT_LINE, "require '"},
    {CL_RUBY, AT_LINE, "require \""},
    {CL_RUBY, AT_LINE, "puts "},
    {CL_RUBY, AT_ANY, ".each do"},
    {CL_RUBY, AT_ANY, "do |"},
    {CL_RUBY, AT_LINE, "module "},
    {CL_RUBY, AT_ANY, "attr_accessor"},
    {CL_RUBY, AT_ANY, "attr_reader"},
    {CL_RUBY, AT_LINE, "elsif "},
    {CL_PERL, AT_LINE, "use strict"},
    {CL_PERL, AT_LINE, "use warnings"},
    {CL_PERL, AT_ANY, "my $"},
    {CL_PERL, AT_ANY, "my @"},
    {CL_PERL, AT_ANY, "my %"},
    {CL_PERL, AT_LINE, "sub "},
    {CL_PERL, AT_ANY, "=~"},
    {CL_PERL, AT_ANY, "$_"},
    {CL_PERL, AT_ANY, "@ARGV"},
    {CL_PERL, AT_ANY, "$self"},
    {CL_PERL, AT_WHOLE, "__END__"},
    {CL_PERL, AT_ANY, "qw("},
    {CL_PHP, AT_ANY, "<?php"},
    {CL_PHP, AT_ANY, "$this->"},
    {CL_PHP, AT_ANY, "public function"},
    {CL_PHP, AT_ANY, "private function"},
    {CL_PHP, AT_LINE, "echo "},
    {CL_PHP, AT_ANY, "?>"},
    {CL_PHP, AT_ANY, "array("},
    {CL_PHP, AT_ANY, "$_GET"},
    {CL_PHP, AT_ANY, "$_POST"},
    {CL_SQL, AT_LINE, "SELECT "},
    {CL_SQL, AT_LINE, "CREATE TABLE"},
    {CL_SQL, AT_LINE, "INSERT INTO"},
    {CL_SQL, AT_ANY, "FROM "},
    {CL_SQL, AT_ANY, "WHERE "},
    {CL_SQL, AT_LINE, "UPDATE "},
    {CL_SQL, AT_ANY, "PRIMARY KEY"},
    {CL_SQL, AT_ANY, "VARCHAR"},
    {CL_SQL, AT_ANY, "NOT NULL"},
    {CL_SQL, AT_ANY, "GROUP BY"},
    {CL_SQL, AT_ANY, "ORDER BY"},
    {CL_LUA, AT_LINE, "local "},
    {CL_LUA, AT_LINE, "function "},
    {CL_LUA, AT_WHOLE, "end"},
    {CL_LUA, AT_ANY, "~="},
    {CL_LUA, AT_ANY, "nil"},
    {CL_LUA, AT_LINE, "elseif "},
    {CL_LUA, AT_ANY, "pairs("},
    {CL_LUA, AT_ANY, "--[["},
    {CL_LUA, AT_ANY, "require(\""},
    {CL_MAKE, AT_LINE, ".PHONY:"},
    {CL_MAKE, AT_ANY, "$(CC)"},
    {CL_MAKE, AT_ANY, "$(CFLAGS)"},
    {CL_MAKE, AT_ANY, "$(MAKE)"},
    {CL_MAKE, AT_ANY, "$@"},
    {CL_MAKE, AT_ANY, "$<"},
    {CL_MAKE, AT_ANY, "$^"},
    {CL_MAKE, AT_LINE, "all:"},
    {CL_MAKE, AT_LINE, "clean:"},
    {CL_MAKE, AT_LINE, "install:"},
    {CL_MAKE, AT_ANY, ":="},
    {CL_MAKE, AT_ANY, "?="},
};

/* Only the head decides: 16 KiB holds the imports, includes and first definitions. */
#define CONTENT_SAMPLE (16 * 1024)
/* Distinct markers a language needs. Three: one marker can be a quote in prose ("import",
 * "->"), two can be a coincidence, three different syntactic forms are code. Checked against
 * Debian's license texts and documentation (tests/unit/test_ing_detect.c). */
#define CONTENT_MIN_DISTINCT 3
/* And at least one marker hit per this many bytes, so a long prose text with three stray
 * matches stays prose. */
#define CONTENT_BYTES_PER_HIT 1024
/* C++ needs this many of its own markers on top of C's; fewer and the file is C. */
#define CONTENT_CPP_MIN_OWN 2

#define MARKER_COUNT ARRAY_LEN(markers)

#define PREFIX_HASH_BITS 14
#define PREFIX_HASH_SIZE (1u << PREFIX_HASH_BITS)

/* Markers grouped by first byte, built once, separately for those that may match anywhere and
 * those that only match at a line start: a scan looks at a handful of candidates per position
 * instead of the whole table. */
struct marker_index {
    /* The exact first two bytes of the markers (for a directive, '#' and a blank too): one bit
     * test rejects almost every word start in prose. */
    uint64_t pair[65536 / 64];
    /* Hashed first 2, 3 and 4 bytes of the AT_ANY markers (each by its length, at most 4): the
     * next reject, for pairs that prose shares with code ("in" of "int main("). 2 KiB each
     * keeps them in L1 next to `pair`; about 1% of the bits are set. */
    uint64_t prefix[3][PREFIX_HASH_SIZE / 64];
    uint16_t order[MARKER_COUNT];
    uint16_t first[257]; /* markers starting with byte c are order[first[c]..first[c+1]) */
};
static struct marker_index index_any, index_line;

/* The first k (<= 4) bytes as a number, and a PREFIX_HASH_BITS multiplicative hash of it
 * (Knuth's golden-ratio constant). */
static inline uint32_t prefix_key(const unsigned char *s, size_t k)
{
    uint32_t v = 0;
    for (size_t i = 0; i < k; i++)
        v |= (uint32_t)s[i] << (8 * i);
    return v;
}

static inline unsigned prefix_hash(uint32_t v)
{
    return (unsigned)((v * 0x9e3779b1u) >> (32 - PREFIX_HASH_BITS));
}

static inline int pair_hit(const struct marker_index *x, const unsigned char *s)
{
    unsigned pr = (unsigned)s[0] << 8 | s[1];
    return x->pair[pr / 64] >> (pr % 64) & 1;
}

static inline void pair_set(struct marker_index *x, unsigned char c0, unsigned char c1)
{
    unsigned pr = (unsigned)c0 << 8 | c1;
    x->pair[pr / 64] |= (uint64_t)1 << (pr % 64);
}

/* After pair_hit(): s[0..avail) with avail >= 2. */
static inline int prefix_hit(const struct marker_index *x, const unsigned char *s, size_t avail)
{
    size_t k = avail < 4 ? avail : 4;
    uint32_t v = k == 4 ? (uint32_t)load_lanes4(s) : prefix_key(s, k);
    for (size_t j = 2; j <= k; j++) {
        uint32_t part = j == 4 ? v : v & ((1u << (8 * j)) - 1);
        unsigned h = prefix_hash(part);
        if (x->prefix[j - 2][h / 64] >> (h % 64) & 1)
            return 1;
    }
    return 0;
}
static uint8_t marker_len[MARKER_COUNT];
static pthread_once_t marker_once = PTHREAD_ONCE_INIT;

static void index_build(struct marker_index *x, int line)
{
    uint16_t count[256] = {0};
    for (size_t i = 0; i < MARKER_COUNT; i++)
        if ((markers[i].at != AT_ANY) == line)
            count[(unsigned char)markers[i].pat[0]]++;
    uint16_t at = 0;
    for (int c = 0; c < 256; c++) {
        x->first[c] = at;
        at = (uint16_t)(at + count[c]);
    }
    x->first[256] = at;
    uint16_t fill[256];
    memcpy(fill, x->first, sizeof fill);
    for (size_t i = 0; i < MARKER_COUNT; i++) {
        if ((markers[i].at != AT_ANY) != line)
            continue;
        const unsigned char *pat = (const unsigned char *)markers[i].pat;
        x->order[fill[pat[0]]++] = (uint16_t)i;
        pair_set(x, pat[0], pat[1]);
        if (markers[i].at == AT_PP) { /* "#  include" */
            pair_set(x, pat[0], ' ');
            pair_set(x, pat[0], '\t');
        }
        if (!line) {
            size_t k = strlen(markers[i].pat);
            k = k < 4 ? k : 4;
            unsigned h = prefix_hash(prefix_key(pat, k));
            x->prefix[k - 2][h / 64] |= (uint64_t)1 << (h % 64);
        }
    }
}

static void marker_index_build(void)
{
    for (size_t i = 0; i < MARKER_COUNT; i++)
        marker_len[i] = (uint8_t)strlen(markers[i].pat);
    index_build(&index_any, 0);
    index_build(&index_line, 1);
    /* A newline is a candidate of the AT_ANY scan too, when the next line may start with a
     * line marker (or its indentation): one scan finds both kinds. */
    for (int c = 0; c < 256; c++)
        if (index_line.first[c] != index_line.first[c + 1] || c == ' ' || c == '\t')
            pair_set(&index_any, '\n', (unsigned char)c);
}

/* Does marker m match at t[i]? The caller has checked the first byte, the word boundary before
 * it, and the position (line start) for line markers; `le` is the end of the line. */
static int marker_at(size_t m, const char *t, size_t i, size_t le)
{
    const char *pat = markers[m].pat;
    size_t k = marker_len[m];
    int at = markers[m].at;
    size_t j = i;
    if (at == AT_PP) {
        j = i + 1; /* '#', then blanks: "#  include" */
        while (j < le && (t[j] == ' ' || t[j] == '\t'))
            j++;
        pat++;
        k--;
    }
    if (le - j < k || memcmp(t + j, pat, k) != 0)
        return 0;
    size_t e = j + k;
    if (is_ident((unsigned char)pat[k - 1]) && e < le && is_ident((unsigned char)t[e]))
        return 0;
    if (at == AT_WHOLE) {
        while (e < le && (t[e] == ' ' || t[e] == '\t' || t[e] == '\r'))
            e++;
        if (e != le)
            return 0;
    }
    return 1;
}

struct lang_score {
    uint64_t seen[(MARKER_COUNT + 63) / 64];
    unsigned distinct[CL_COUNT];
    size_t hits[CL_COUNT];
};

static void score_candidates(struct lang_score *s, const struct marker_index *x, const char *t,
                             size_t p, size_t le)
{
    unsigned char c = (unsigned char)t[p];
    for (uint16_t o = x->first[c]; o < x->first[c + 1]; o++) {
        size_t mk = x->order[o];
        if (!marker_at(mk, t, p, le))
            continue;
        s->hits[markers[mk].lang]++;
        if (!(s->seen[mk / 64] >> (mk % 64) & 1)) {
            s->seen[mk / 64] |= (uint64_t)1 << (mk % 64);
            s->distinct[markers[mk].lang]++;
        }
    }
}

/* The end of the line holding t[p] (its '\n', or m). */
static size_t line_end(const char *t, size_t p, size_t m)
{
    const char *nl = memchr(t + p, '\n', m - p);
    return nl ? (size_t)(nl - t) : m;
}

/* Scores the line markers of the line starting at t[ls] (indentation not yet skipped). *le is
 * the end of the line last looked up, refreshed here when it lies behind. */
static void score_line_start(struct lang_score *s, const char *t, size_t ls, size_t m, size_t *le)
{
    while (ls < m && (t[ls] == ' ' || t[ls] == '\t'))
        ls++;
    /* Every marker has two bytes or more, and none has a newline in its first two. */
    if (ls + 1 >= m || !pair_hit(&index_line, (const unsigned char *)t + ls))
        return;
    if (*le <= ls)
        *le = line_end(t, ls, m);
    score_candidates(s, &index_line, t, ls, *le);
}

#if !defined(__SSE2__)
/* The bits of a lane mask, lane k to bit k (the plain-C path only). */
static inline uint64_t lanes_bits(uint64_t mask)
{
    return ((mask >> 7) * 0x0102040810204080ull) >> 56;
}
#endif

/* Index of the lowest set bit of x != 0. The builtin is one instruction; the de Bruijn table
 * (Leiserson, Prokop and Randall, "Using de Bruijn sequences to index a 1 in a computer word")
 * gives the same answer anywhere else. */
static inline unsigned lowest_bit(uint64_t x)
{
#if defined(__GNUC__) || defined(__clang__)
    return (unsigned)__builtin_ctzll(x);
#else
    static const unsigned char index64[64] = {
        0,  1,  48, 2,  57, 49, 28, 3,  61, 58, 50, 42, 38, 29, 17, 4,  62, 55, 59, 36, 53, 51,
        43, 22, 45, 39, 33, 30, 24, 18, 12, 5,  63, 47, 56, 27, 60, 41, 37, 16, 54, 35, 52, 21,
        44, 32, 23, 11, 46, 26, 40, 15, 34, 20, 31, 10, 25, 14, 19, 9,  13, 8,  7,  6,
    };
    return index64[((x & (~x + 1)) * 0x03f79d71b4cb0a89ull) >> 58];
#endif
}

/* The content scan classifies 64 bytes per step, one bit per byte in a uint64_t, and works
 * through the sample in windows whose candidate positions fit a small array on the stack. */
#define CONTENT_CHUNK  64
#define CONTENT_WINDOW 4096

/* Bits of p[0..64) where an AT_ANY marker may start, and newlines (a line marker may follow):
 * printable ASCII that is not a letter after a letter. A superset of the real rule (identifier
 * bytes need a word start, others match anywhere): digits and '_' are not tracked here, and the
 * caller checks exactly. Prose keeps one byte in four or five, and the pair test rejects most of
 * those. *letter_before carries whether the byte before p was a letter. */
static inline uint64_t content_candidates(const unsigned char *p, uint64_t *letter_before)
{
    uint64_t letter = 0, graphic = 0, newline = 0;
#if defined(__SSE2__)
    /* SSE2 is in every x86-64 CPU; this computes exactly what the plain C below does, four
     * times faster. Signed compares leave bytes >= 0x80 out of both classes. */
    for (unsigned k = 0; k < CONTENT_CHUNK / 16; k++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
        __m128i folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
        __m128i lt = _mm_and_si128(_mm_cmpgt_epi8(folded, _mm_set1_epi8('a' - 1)),
                                   _mm_cmplt_epi8(folded, _mm_set1_epi8('z' + 1)));
        __m128i gr = _mm_cmpgt_epi8(v, _mm_set1_epi8(' '));
        letter |= (uint64_t)(unsigned)_mm_movemask_epi8(lt) << (16 * k);
        graphic |= (uint64_t)(unsigned)_mm_movemask_epi8(gr) << (16 * k);
        newline |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('\n')))
                   << (16 * k);
    }
#else
    for (unsigned k = 0; k < CONTENT_CHUNK / 8; k++) {
        uint64_t v = load_lanes(p + 8 * k);
        uint64_t a = v & LANES_7F;
        uint64_t folded = a | 0x20 * LANES_01; /* 'A'..'Z' onto 'a'..'z', nothing else into it */
        letter |= lanes_bits(lanes_ge(folded, 'a') & ~lanes_ge(folded, 'z' + 1) & ~v) << (8 * k);
        graphic |= lanes_bits(lanes_ge(a, '!') & ~v & LANES_80) << (8 * k);
        newline |= lanes_bits(lanes_eq(v, '\n')) << (8 * k);
    }
#endif
    uint64_t mid_word = letter & (letter << 1 | *letter_before);
    *letter_before = letter >> 63;
    return (graphic & ~mid_word) | newline;
}

/* Appends base + the index of each set bit of bits to out, lowest first; returns the count.
 * Writes up to FLATTEN_AHEAD entries past the count, without a branch per bit (after
 * simdjson's flatten_bits): the number of bits per chunk varies too much for a branch to
 * guess. Prose has 10 to 20 candidates in 64 bytes, hence 16. */
#define FLATTEN_AHEAD 16

static inline size_t flatten_bits(uint16_t *out, uint16_t base, uint64_t bits)
{
    /* Population count (Hacker's Delight 5-1): a loop over the bits would be the branch. */
    uint64_t c = bits - (bits >> 1 & 0x5555555555555555ull);
    c = (c & 0x3333333333333333ull) + (c >> 2 & 0x3333333333333333ull);
    c = (c + (c >> 4)) & 0x0f0f0f0f0f0f0f0full;
    size_t count = (size_t)((c * LANES_01) >> 56);
    for (unsigned k = 0; k < FLATTEN_AHEAD; k++) {
        out[k] = (uint16_t)(base + lowest_bit(bits | (uint64_t)1 << 63));
        bits &= bits - 1;
    }
    for (size_t k = FLATTEN_AHEAD; k < count; k++) {
        out[k] = (uint16_t)(base + lowest_bit(bits));
        bits &= bits - 1;
    }
    return count;
}

/* Scores the AT_ANY markers of t[w..we) of the sample t[0..m), w a multiple of CONTENT_CHUNK.
 * *letter_before and *le carry from the window before. */
static void score_window(struct lang_score *s, const char *t, size_t w, size_t we, size_t m,
                         uint64_t *letter_before, size_t *le)
{
    const unsigned char *u = (const unsigned char *)t;
    uint16_t pos[CONTENT_WINDOW + FLATTEN_AHEAD];
    size_t np = 0;
    for (size_t p = w; p < we; p += CONTENT_CHUNK) {
        uint64_t cand;
        if (p + CONTENT_CHUNK <= we) {
            cand = content_candidates(u + p, letter_before);
        } else { /* the last partial chunk, padded with NULs, which are never candidates */
            unsigned char pad[CONTENT_CHUNK] = {0};
            memcpy(pad, u + p, we - p);
            cand = content_candidates(pad, letter_before);
        }
        if (p + CONTENT_CHUNK >= m) /* a pair needs its second byte inside the sample */
            cand &= ~((uint64_t)1 << (m - 1 - p));
        np += flatten_bits(pos + np, (uint16_t)(p - w), cand);
    }
    /* The pair test, without a branch: most candidates fail it. */
    size_t nh = 0;
    for (size_t k = 0; k < np; k++) {
        pos[nh] = pos[k];
        nh += pair_hit(&index_any, u + w + pos[k]);
    }
    for (size_t k = 0; k < nh; k++) {
        size_t q = w + pos[k];
        if (u[q] == '\n') {
            score_line_start(s, t, q + 1, m, le);
            continue;
        }
        if (q > 0 && is_ident(u[q]) && is_ident(u[q - 1]))
            continue; /* inside a word */
        /* The prefix test may read past the line: it only rejects, marker_at() decides. */
        if (!prefix_hit(&index_any, u + q, m - q))
            continue;
        if (*le <= q)
            *le = line_end(t, q, m);
        score_candidates(s, &index_any, t, q, *le);
    }
}

const char *ing_lang_from_content(const char *text, size_t n)
{
    if (!text || n == 0)
        return NULL;
    pthread_once(&marker_once, marker_index_build);
    size_t m = n < CONTENT_SAMPLE ? n : CONTENT_SAMPLE;
    struct lang_score s;
    memset(&s, 0, sizeof s);

    size_t le = 0; /* end of the line last looked up: lines are found only for a likely hit */
    score_line_start(&s, text, 0, m, &le);
    uint64_t letter_before = 0;
    for (size_t w = 0; w < m; w += CONTENT_WINDOW)
        score_window(&s, text, w, w + CONTENT_WINDOW < m ? w + CONTENT_WINDOW : m, m,
                     &letter_before, &le);

    /* C++ is C plus its own markers; without enough of its own it does not compete. */
    if (s.distinct[CL_CPP] >= CONTENT_CPP_MIN_OWN) {
        s.distinct[CL_CPP] += s.distinct[CL_C];
        s.hits[CL_CPP] += s.hits[CL_C];
    } else {
        s.distinct[CL_CPP] = 0;
    }
    size_t min_hits = m / CONTENT_BYTES_PER_HIT;
    int best = -1;
    for (int l = 0; l < CL_COUNT; l++) {
        if (s.distinct[l] < CONTENT_MIN_DISTINCT || s.hits[l] < min_hits)
            continue;
        if (best < 0 || s.distinct[l] > s.distinct[best] ||
            (s.distinct[l] == s.distinct[best] && s.hits[l] > s.hits[best]))
            best = l;
    }
    return best < 0 ? NULL : content_lang_names[best];
}

/* ---- Math -------------------------------------------------------------------------------- */

/* Only the head decides (the header's "first 64 KiB"). */
#define MATH_SAMPLE (64 * 1024)
/* Inline $...$ must close within this many bytes and before a blank line; display $$...$$
 * within DISPLAY_SPAN. Real formulas are far shorter; the limits keep prices ("$5 and $10")
 * from pairing across paragraphs. */
#define INLINE_SPAN  512
#define DISPLAY_SPAN 8192

/* LaTeX commands that only mathematics uses (plus Greek letters). */
static const char *const math_commands[] = {
    "frac",     "dfrac",  "tfrac",   "sqrt",     "sum",        "prod",         "int",   "iint",
    "oint",     "lim",    "infty",   "partial",  "nabla",      "cdot",         "cdots", "ldots",
    "times",    "div",    "pm",      "mp",       "leq",        "geq",          "le",    "ge",
    "neq",      "ne",     "approx",  "equiv",    "sim",        "simeq",        "cong",  "propto",
    "mathbb",   "mathrm", "mathcal", "mathbf",   "mathfrak",   "operatorname", "left",  "right",
    "in",       "notin",  "subset",  "subseteq", "supset",     "cup",          "cap",   "setminus",
    "forall",   "exists", "to",      "mapsto",   "rightarrow", "Rightarrow",   "iff",   "implies",
    "binom",    "log",    "ln",      "sin",      "cos",        "tan",          "exp",   "det",
    "pmod",     "bmod",   "vec",     "hat",      "bar",        "overline",     "dots",  "alpha",
    "beta",     "gamma",  "delta",   "epsilon",  "varepsilon", "zeta",         "eta",   "theta",
    "vartheta", "iota",   "kappa",   "lambda",   "mu",         "nu",           "xi",    "pi",
    "rho",      "sigma",  "tau",     "upsilon",  "phi",        "varphi",       "chi",   "psi",
    "omega",    "Gamma",  "Delta",   "Theta",    "Lambda",     "Xi",           "Pi",    "Sigma",
    "Phi",      "Psi",    "Omega",
};

/* \begin{...} environments that hold mathematics or mathematical structure. */
static const char *const math_envs[] = {
    "equation", "align",   "gather", "multline", "eqnarray",  "displaymath",
    "math",     "split",   "cases",  "matrix",   "pmatrix",   "bmatrix",
    "vmatrix",  "theorem", "lemma",  "proof",    "corollary", "proposition",
};

/* A word list as an open-addressing hash set, built once: roff and LaTeX put a backslash every
 * few dozen bytes, and a linear search per backslash was most of math_scan's time. */
#define WORD_SET_SLOTS 256 /* a power of two over twice the longest list */

struct word_set {
    const char *const *list;
    size_t count;
    uint8_t slot[WORD_SET_SLOTS]; /* index into list + 1; 0 is empty */
    uint8_t len[WORD_SET_SLOTS];
    size_t max_len;
};

static struct word_set math_command_set = {math_commands, ARRAY_LEN(math_commands), {0}, {0}, 0};
static struct word_set math_env_set = {math_envs, ARRAY_LEN(math_envs), {0}, {0}, 0};
static pthread_once_t math_once = PTHREAD_ONCE_INIT;

/* FNV-1a (Fowler, Noll, Vo), 32 bits. */
static unsigned word_hash(const char *w, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)w[i]) * 16777619u;
    return (unsigned)h;
}

static void word_set_build(struct word_set *ws)
{
    for (size_t i = 0; i < ws->count; i++) {
        size_t len = strlen(ws->list[i]);
        unsigned h = word_hash(ws->list[i], len) % WORD_SET_SLOTS;
        while (ws->slot[h])
            h = (h + 1) % WORD_SET_SLOTS;
        ws->slot[h] = (uint8_t)(i + 1);
        ws->len[h] = (uint8_t)len;
        ws->max_len = len > ws->max_len ? len : ws->max_len;
    }
}

static void math_sets_build(void)
{
    word_set_build(&math_command_set);
    word_set_build(&math_env_set);
}

static int in_word_set(const struct word_set *ws, const char *w, size_t len)
{
    if (len > ws->max_len)
        return 0;
    for (unsigned h = word_hash(w, len) % WORD_SET_SLOTS; ws->slot[h]; h = (h + 1) % WORD_SET_SLOTS)
        if (ws->len[h] == len && memcmp(ws->list[ws->slot[h] - 1], w, len) == 0)
            return 1;
    return 0;
}

/* Lanes that can start a marker outside dollar spans: '\\', and the UTF-8 lead bytes of the
 * math symbols (E2 for U+2000..U+2FFF, C2 and C3 for the Latin-1 ones). */
static inline uint64_t lanes_math_start(uint64_t v)
{
    return lanes_eq(v, '\\') | lanes_eq(v, 0xe2) | lanes_eq(v | LANES_01, 0xc3);
}

/* Counts math markers in t[0..n) (n already clipped to the sample) and its characters. */
static void math_scan(const char *t, size_t n, size_t *markers_out, size_t *chars_out)
{
    pthread_once(&math_once, math_sets_build);
    const unsigned char *u = (const unsigned char *)t;
    size_t mk = 0, chars = 0, c8 = 0;
    /* Characters are the bytes that are not UTF-8 continuations (10xxxxxx). Continuations are
     * counted per lane, in bytes, for up to 255 steps before the lanes are summed: a byte at a
     * time cost a fifth of the scan. */
    while (c8 + 8 <= n) {
        size_t start = c8;
        uint64_t lanes = 0;
        for (size_t k = 0; k < 255 && c8 + 8 <= n; k++, c8 += 8) {
            uint64_t v = load_lanes(u + c8);
            lanes += (v & ~(v << 1) & LANES_80) >> 7;
        }
        uint64_t pairs = (lanes & 0x00ff00ff00ff00ffull) + (lanes >> 8 & 0x00ff00ff00ff00ffull);
        chars += c8 - start - (size_t)((pairs * 0x0001000100010001ull) >> 48);
    }
    for (; c8 < n; c8++)
        chars += (u[c8] & 0xc0) != 0x80;

    /* Dollar spans, jumped over whole so their closers are not read as openers. Pandoc's rule
     * for inline math: the opener has a non-blank on its right, the closer a non-blank on its
     * left and no digit on its right. */
    size_t i = 0;
    while (i < n) {
        const char *d = memchr(t + i, '$', n - i);
        if (!d)
            break;
        i = (size_t)(d - t);
        if (i > 0 && t[i - 1] == '\\') {
            i++;
            continue;
        }
        if (i + 1 < n && t[i + 1] == '$') {
            size_t lim = i + 2 + DISPLAY_SPAN < n ? i + 2 + DISPLAY_SPAN : n;
            size_t j = i + 2;
            while (j + 1 < lim && !(t[j] == '$' && t[j + 1] == '$'))
                j++;
            if (j + 1 < lim) {
                mk++;
                i = j + 2;
            } else {
                i += 2;
            }
            continue;
        }
        if (i + 1 >= n || is_space(u[i + 1])) {
            i++;
            continue;
        }
        size_t lim = i + 1 + INLINE_SPAN < n ? i + 1 + INLINE_SPAN : n;
        size_t j = i + 1, close = 0;
        for (; j < lim; j++) {
            if (t[j] == '\n' && j + 1 < n && t[j + 1] == '\n')
                break;
            if (t[j] == '$' && t[j - 1] != '\\') {
                if (!is_space(u[j - 1]) && !(j + 1 < n && is_digit(u[j + 1])))
                    close = j;
                break;
            }
        }
        if (close) {
            mk++;
            i = close + 1;
        } else {
            i++;
        }
    }

    for (i = 0; i < n; i++) {
        /* Skip eight bytes at a time to the next byte that can start a marker. */
        while (i + 8 <= n) {
            uint64_t v = load_lanes(u + i);
            if (!(v & LANES_80) && !lanes_eq(v, '\\')) { /* the common case, cheaper */
                i += 8;
                continue;
            }
            uint64_t hit = lanes_math_start(v);
            if (hit) {
                i += lanes_first(hit);
                break;
            }
            i += 8;
        }
        if (i >= n)
            break;
        unsigned char c = u[i];
        if (c == '\\' && i + 1 < n) {
            unsigned char d = u[i + 1];
            if (d == '(' || d == '[') {
                mk++;
                i++;
                continue;
            }
            size_t j = i + 1;
            while (j < n && is_alpha(u[j]))
                j++;
            size_t len = j - i - 1;
            if (len == 5 && memcmp(t + i + 1, "begin", 5) == 0 && j < n && t[j] == '{') {
                size_t e = j + 1;
                while (e < n && is_alpha(u[e]))
                    e++;
                if (in_word_set(&math_env_set, t + j + 1, e - j - 1))
                    mk++;
            } else if (len && in_word_set(&math_command_set, t + i + 1, len)) {
                mk++;
            }
            i = j - 1;
        } else if (c == 0xe2 && i + 2 < n) {
            unsigned char c1 = u[i + 1], c2 = u[i + 2];
            /* U+2200..U+22FF (E2 88 80..E2 8B BF). Superscript and subscript digits are not
             * markers: prose uses them for footnotes, units (m²) and formulas of chemistry
             * (H₂O); a Common Crawl page with three footnotes read as math with them. */
            (void)c2;
            if (c1 >= 0x88 && c1 <= 0x8b)
                mk++;
            i += 2;
        } else if ((c == 0xc2 || c == 0xc3) && i + 1 < n) {
            unsigned char c1 = u[i + 1];
            /* ± (C2 B1), × ÷ (C3 97, C3 B7). */
            if ((c == 0xc2 && c1 == 0xb1) || (c == 0xc3 && (c1 == 0x97 || c1 == 0xb7)))
                mk++;
            i++;
        }
    }
    *markers_out = mk;
    *chars_out = chars;
}

double ing_math_density(const char *text, size_t n)
{
    if (!text || n == 0)
        return 0.0;
    size_t mk, chars;
    math_scan(text, n < MATH_SAMPLE ? n : MATH_SAMPLE, &mk, &chars);
    return chars ? (double)mk * 1000.0 / (double)chars : 0.0;
}

/* ---- Domain ------------------------------------------------------------------------------ */

int ing_detect_domain(const char *name, size_t len, const char *text, size_t n, const char **lang)
{
    const char *l = ing_lang_from_name(name, len);
    if (!l)
        l = ing_lang_from_shebang(text, n);
    if (!l && !(name && is_prose_name(name, len)))
        l = ing_lang_from_content(text, n);
    if (l) {
        *lang = l;
        return TM_DOMAIN_CODE;
    }
    *lang = "und";
    if (text && n) {
        size_t mk, chars;
        math_scan(text, n < MATH_SAMPLE ? n : MATH_SAMPLE, &mk, &chars);
        if (mk >= ING_MATH_MIN_MARKERS && chars &&
            (double)mk * 1000.0 / (double)chars >= ING_MATH_THRESHOLD)
            return TM_DOMAIN_MATH;
    }
    return TM_DOMAIN_TEXT;
}
