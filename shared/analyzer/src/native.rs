//! Language packages that need Debian packages to build or to run, so the image builds and the
//! app starts (opencv needs libGL, psycopg2 needs libpq, puppeteer needs Chromium's libraries).

/// Chromium's shared libraries (puppeteer, playwright, selenium with a bundled browser).
const CHROMIUM_LIBS: &[&str] = &[
    "ca-certificates",
    "fonts-liberation",
    "libasound2",
    "libatk-bridge2.0-0",
    "libatk1.0-0",
    "libcups2",
    "libdbus-1-3",
    "libdrm2",
    "libgbm1",
    "libgtk-3-0",
    "libnspr4",
    "libnss3",
    "libxcomposite1",
    "libxdamage1",
    "libxfixes3",
    "libxkbcommon0",
    "libxrandr2",
    "xdg-utils",
];

const NODE_GYP: &[&str] = &["python3", "make", "g++"];

/// One row: ecosystem ("python", "node", "ruby", "php", "go", "rust"), package name as in the
/// manifest (lowercase), Debian packages to build, Debian packages to run.
pub type NativeLibrary = (
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

/// The table. Lookups are by exact (normalised) package name.
pub static NATIVE_LIBRARIES: &[NativeLibrary] = &[
    // Python
    ("python", "psycopg2", &["gcc", "libpq-dev"], &["libpq5"]),
    ("python", "psycopg", &[], &["libpq5"]),
    ("python", "psycopg-c", &["gcc", "libpq-dev"], &["libpq5"]),
    ("python", "asyncpg", &[], &[]),
    (
        "python",
        "mysqlclient",
        &["gcc", "pkg-config", "default-libmysqlclient-dev"],
        &["libmariadb3"],
    ),
    (
        "python",
        "lxml",
        &["gcc", "libxml2-dev", "libxslt1-dev"],
        &["libxml2", "libxslt1.1"],
    ),
    (
        "python",
        "pillow",
        &["gcc", "libjpeg62-turbo-dev", "zlib1g-dev"],
        &["libjpeg62-turbo", "zlib1g"],
    ),
    ("python", "opencv-python", &[], &["libgl1", "libglib2.0-0"]),
    (
        "python",
        "opencv-contrib-python",
        &[],
        &["libgl1", "libglib2.0-0"],
    ),
    ("python", "opencv-python-headless", &[], &["libglib2.0-0"]),
    (
        "python",
        "pycairo",
        &["gcc", "pkg-config", "libcairo2-dev"],
        &["libcairo2"],
    ),
    ("python", "cairocffi", &[], &["libcairo2"]),
    ("python", "cairosvg", &[], &["libcairo2"]),
    (
        "python",
        "weasyprint",
        &[],
        &[
            "libpango-1.0-0",
            "libpangoft2-1.0-0",
            "libharfbuzz0b",
            "libpangocairo-1.0-0",
            "fonts-dejavu-core",
        ],
    ),
    ("python", "pytesseract", &[], &["tesseract-ocr"]),
    ("python", "ffmpeg-python", &[], &["ffmpeg"]),
    ("python", "moviepy", &[], &["ffmpeg"]),
    ("python", "pydub", &[], &["ffmpeg"]),
    ("python", "openai-whisper", &[], &["ffmpeg"]),
    ("python", "python-magic", &[], &["libmagic1"]),
    (
        "python",
        "pyodbc",
        &["gcc", "g++", "unixodbc-dev"],
        &["unixodbc"],
    ),
    ("python", "pymssql", &["gcc", "freetds-dev"], &["libsybdb5"]),
    ("python", "pdf2image", &[], &["poppler-utils"]),
    ("python", "playwright", &[], CHROMIUM_LIBS),
    ("python", "pyppeteer", &[], CHROMIUM_LIBS),
    ("python", "selenium", &[], &["chromium", "chromium-driver"]),
    (
        "python",
        "gdal",
        &["gcc", "g++", "libgdal-dev"],
        &["libgdal32"],
    ),
    ("python", "shapely", &[], &["libgeos-c1v5"]),
    (
        "python",
        "xmlsec",
        &["gcc", "pkg-config", "libxmlsec1-dev"],
        &["libxmlsec1", "libxmlsec1-openssl"],
    ),
    (
        "python",
        "python-ldap",
        &["gcc", "libldap2-dev", "libsasl2-dev"],
        &["libldap-2.5-0", "libsasl2-2"],
    ),
    (
        "python",
        "pyaudio",
        &["gcc", "portaudio19-dev"],
        &["libportaudio2"],
    ),
    (
        "python",
        "dlib",
        &["cmake", "g++", "libopenblas-dev"],
        &["libopenblas0"],
    ),
    (
        "python",
        "face-recognition",
        &["cmake", "g++", "libopenblas-dev"],
        &["libopenblas0"],
    ),
    ("python", "pyzbar", &[], &["libzbar0"]),
    ("python", "wand", &[], &["libmagickwand-6.q16-6"]),
    (
        "python",
        "pygraphviz",
        &["gcc", "libgraphviz-dev"],
        &["graphviz"],
    ),
    ("python", "uwsgi", &["gcc", "libpcre2-dev"], &[]),
    ("python", "cffi", &["gcc", "libffi-dev"], &["libffi8"]),
    (
        "python",
        "gssapi",
        &["gcc", "libkrb5-dev"],
        &["libgssapi-krb5-2"],
    ),
    // Node.js
    (
        "node",
        "canvas",
        &[
            "python3",
            "make",
            "g++",
            "libcairo2-dev",
            "libpango1.0-dev",
            "libjpeg-dev",
            "libgif-dev",
            "librsvg2-dev",
        ],
        &[
            "libcairo2",
            "libpango-1.0-0",
            "libpangocairo-1.0-0",
            "libjpeg62-turbo",
            "libgif7",
            "librsvg2-2",
        ],
    ),
    ("node", "bcrypt", NODE_GYP, &[]),
    ("node", "argon2", NODE_GYP, &[]),
    ("node", "sharp", &[], &[]),
    ("node", "sqlite3", NODE_GYP, &[]),
    ("node", "better-sqlite3", NODE_GYP, &[]),
    (
        "node",
        "pg-native",
        &["python3", "make", "g++", "libpq-dev"],
        &["libpq5"],
    ),
    (
        "node",
        "libpq",
        &["python3", "make", "g++", "libpq-dev"],
        &["libpq5"],
    ),
    ("node", "puppeteer", &[], CHROMIUM_LIBS),
    ("node", "playwright", &[], CHROMIUM_LIBS),
    ("node", "playwright-chromium", &[], CHROMIUM_LIBS),
    ("node", "@playwright/test", &[], CHROMIUM_LIBS),
    ("node", "fluent-ffmpeg", &[], &["ffmpeg"]),
    ("node", "node-tesseract-ocr", &[], &["tesseract-ocr"]),
    ("node", "gm", &[], &["graphicsmagick"]),
    ("node", "imagemagick", &[], &["imagemagick"]),
    ("node", "pdf2pic", &[], &["graphicsmagick", "ghostscript"]),
    ("node", "node-poppler", &[], &["poppler-utils"]),
    ("node", "zeromq", NODE_GYP, &[]),
    ("node", "re2", NODE_GYP, &[]),
    // Ruby
    ("ruby", "pg", &["libpq-dev"], &["libpq5"]),
    (
        "ruby",
        "mysql2",
        &["default-libmysqlclient-dev"],
        &["libmariadb3"],
    ),
    ("ruby", "sqlite3", &["libsqlite3-dev"], &["libsqlite3-0"]),
    ("ruby", "rmagick", &["libmagickwand-dev"], &["imagemagick"]),
    ("ruby", "mini_magick", &[], &["imagemagick"]),
    ("ruby", "ruby-vips", &[], &["libvips42"]),
    ("ruby", "image_processing", &[], &["libvips42"]),
    // PHP (composer "ext-*" requirements; the extension itself is built with docker-php-ext-install)
    ("php", "ext-pgsql", &["libpq-dev"], &["libpq5"]),
    ("php", "ext-pdo_pgsql", &["libpq-dev"], &["libpq5"]),
    (
        "php",
        "ext-gd",
        &["libpng-dev", "libjpeg62-turbo-dev", "libfreetype6-dev"],
        &["libpng16-16", "libjpeg62-turbo", "libfreetype6"],
    ),
    ("php", "ext-zip", &["libzip-dev"], &["libzip4"]),
    ("php", "ext-intl", &["libicu-dev"], &["libicu72"]),
    // Go (cgo)
    (
        "go",
        "github.com/mattn/go-sqlite3",
        &["gcc", "libc6-dev"],
        &[],
    ),
    // Rust
    (
        "rust",
        "openssl",
        &["pkg-config", "libssl-dev"],
        &["libssl3"],
    ),
    (
        "rust",
        "openssl-sys",
        &["pkg-config", "libssl-dev"],
        &["libssl3"],
    ),
    (
        "rust",
        "native-tls",
        &["pkg-config", "libssl-dev"],
        &["libssl3"],
    ),
    ("rust", "pq-sys", &["libpq-dev"], &["libpq5"]),
    ("rust", "diesel", &["libpq-dev"], &["libpq5"]),
];

/// Build and runtime Debian packages for `deps` of an ecosystem, with one evidence line per
/// package that needs some.
pub fn lookup<'a>(
    eco: &str,
    deps: impl IntoIterator<Item = &'a str>,
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut build = vec![];
    let mut run = vec![];
    let mut evidence = vec![];
    for dep in deps {
        let dep = dep.to_ascii_lowercase();
        for (e, name, b, r) in NATIVE_LIBRARIES {
            if *e == eco && *name == dep && (!b.is_empty() || !r.is_empty()) {
                build.extend(b.iter().map(|s| s.to_string()));
                run.extend(r.iter().map(|s| s.to_string()));
                evidence.push(format!(
                    "{dep} needs Debian packages{}{}",
                    if b.is_empty() {
                        String::new()
                    } else {
                        format!(" to build: {}", b.join(" "))
                    },
                    if r.is_empty() {
                        String::new()
                    } else {
                        format!(" to run: {}", r.join(" "))
                    }
                ));
            }
        }
    }
    (
        crate::common::dedup(build),
        crate::common::dedup(run),
        evidence,
    )
}
