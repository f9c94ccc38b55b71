//! Names that differ between where an error names a thing and where it is installed from:
//! Python import names and their PyPI packages, shared libraries and headers and their Debian
//! packages, commands and the packages that provide them.

/// The PyPI package that provides the Python module `module` (a dotted import path). The
/// most specific prefix wins (`google.cloud.storage` before `google`); an unknown module is
/// its own top-level name, which pip treats case- and `_`/`-`-insensitively.
pub fn pypi_package(module: &str) -> String {
    // Dotted names first: several distributions share the `google` namespace.
    const DOTTED: &[(&str, &str)] = &[
        ("google.cloud.storage", "google-cloud-storage"),
        ("google.cloud.firestore", "google-cloud-firestore"),
        ("google.cloud.pubsub", "google-cloud-pubsub"),
        ("google.cloud.bigquery", "google-cloud-bigquery"),
        ("google.cloud.secretmanager", "google-cloud-secret-manager"),
        ("google.generativeai", "google-generativeai"),
        ("google.genai", "google-genai"),
        ("google.protobuf", "protobuf"),
        ("google.auth", "google-auth"),
        ("google.oauth2", "google-auth"),
        ("mysql.connector", "mysql-connector-python"),
    ];
    for (prefix, package) in DOTTED {
        if module == *prefix || module.starts_with(&format!("{prefix}.")) {
            return (*package).to_string();
        }
    }
    let top = module.split('.').next().unwrap_or(module);
    const TOP: &[(&str, &str)] = &[
        ("cv2", "opencv-python-headless"),
        ("PIL", "pillow"),
        ("yaml", "pyyaml"),
        ("sklearn", "scikit-learn"),
        ("skimage", "scikit-image"),
        ("bs4", "beautifulsoup4"),
        ("dotenv", "python-dotenv"),
        ("jwt", "PyJWT"),
        ("jose", "python-jose"),
        ("dateutil", "python-dateutil"),
        ("magic", "python-magic"),
        ("docx", "python-docx"),
        ("pptx", "python-pptx"),
        ("multipart", "python-multipart"),
        ("Crypto", "pycryptodome"),
        ("OpenSSL", "pyOpenSSL"),
        ("psycopg2", "psycopg2-binary"),
        ("MySQLdb", "mysqlclient"),
        ("serial", "pyserial"),
        ("usb", "pyusb"),
        ("attr", "attrs"),
        ("fitz", "PyMuPDF"),
        ("telegram", "python-telegram-bot"),
        ("discord", "discord.py"),
        ("slugify", "python-slugify"),
        ("socketio", "python-socketio"),
        ("engineio", "python-engineio"),
        ("dns", "dnspython"),
        ("ldap", "python-ldap"),
        ("gi", "PyGObject"),
        ("zmq", "pyzmq"),
        ("speech_recognition", "SpeechRecognition"),
        ("faiss", "faiss-cpu"),
        ("mpl_toolkits", "matplotlib"),
        ("kafka", "kafka-python"),
        ("websocket", "websocket-client"),
        ("Bio", "biopython"),
        ("nacl", "PyNaCl"),
        ("git", "GitPython"),
        ("pkg_resources", "setuptools"),
        ("distutils", "setuptools"),
        ("umap", "umap-learn"),
        ("cairo", "pycairo"),
        ("Levenshtein", "python-Levenshtein"),
        ("jinja2", "Jinja2"),
        ("markdown", "Markdown"),
        ("memcache", "python-memcached"),
        ("win32api", "pywin32"),
    ];
    TOP.iter()
        .find(|(import, _)| *import == top)
        .map_or_else(|| top.to_string(), |(_, package)| (*package).to_string())
}

/// Top-level module names that are almost always the app's own code, not a package.
pub const LOCAL_PYTHON_MODULES: &[&str] = &[
    "app",
    "main",
    "src",
    "api",
    "server",
    "config",
    "settings",
    "core",
    "utils",
    "models",
    "routes",
    "wsgi",
    "asgi",
    "application",
    "backend",
    "project",
    "views",
    "handlers",
    "services",
    "helpers",
    "common",
];

/// The Debian (bookworm) package that provides the shared library `library` (a file name
/// such as `libGL.so.1`, or a bare name such as `libmagic`).
pub fn debian_runtime_package(library: &str) -> Option<&'static str> {
    const LIBRARIES: &[(&str, &str)] = &[
        ("libGL.so", "libgl1"),
        ("libEGL.so", "libegl1"),
        ("libgthread-2.0.so", "libglib2.0-0"),
        ("libglib-2.0.so", "libglib2.0-0"),
        ("libgobject-2.0", "libglib2.0-0"),
        ("libpq.so", "libpq5"),
        ("libmagic", "libmagic1"),
        ("libSM.so", "libsm6"),
        ("libXext.so", "libxext6"),
        ("libXrender.so", "libxrender1"),
        ("libX11.so", "libx11-6"),
        ("libxcb.so", "libxcb1"),
        ("libsndfile.so", "libsndfile1"),
        ("libzbar.so", "libzbar0"),
        ("libcairo.so", "libcairo2"),
        ("libpango-1.0", "libpango-1.0-0"),
        ("libpangocairo", "libpangocairo-1.0-0"),
        ("libgomp.so", "libgomp1"),
        ("libxml2.so", "libxml2"),
        ("libxslt.so", "libxslt1.1"),
        ("libssl.so.3", "libssl3"),
        ("libcrypto.so.3", "libssl3"),
        ("libssl.so.1.1", "libssl1.1"),
        ("libcrypto.so.1.1", "libssl1.1"),
        ("libsqlite3.so", "libsqlite3-0"),
        ("libffi.so.8", "libffi8"),
        ("libjpeg.so", "libjpeg62-turbo"),
        ("libpng16.so", "libpng16-16"),
        ("libtiff.so", "libtiff6"),
        ("libwebp.so", "libwebp7"),
        ("libnss3.so", "libnss3"),
        ("libatk-1.0.so", "libatk1.0-0"),
        ("libatk-bridge-2.0.so", "libatk-bridge2.0-0"),
        ("libgbm.so", "libgbm1"),
        ("libasound.so", "libasound2"),
        ("libxkbcommon.so", "libxkbcommon0"),
        ("libdrm.so", "libdrm2"),
        ("libcups.so", "libcups2"),
        ("libvips.so", "libvips42"),
        ("libportaudio.so", "libportaudio2"),
        ("libmariadb.so", "libmariadb3"),
        ("libmysqlclient.so", "libmariadb3"),
        ("libaio.so", "libaio1"),
        ("libstdc++.so", "libstdc++6"),
        ("libz.so", "zlib1g"),
        ("libgdal.so", "libgdal32"),
        ("libgeos_c.so", "libgeos-c1v5"),
        ("libproj.so", "libproj25"),
        ("libespeak", "libespeak1"),
        ("libtesseract.so", "libtesseract5"),
        ("libopenblas.so", "libopenblas0"),
        ("libgfortran.so", "libgfortran5"),
        ("libfontconfig.so", "libfontconfig1"),
        ("libfreetype.so", "libfreetype6"),
        ("libharfbuzz.so", "libharfbuzz0b"),
        ("libgdk_pixbuf", "libgdk-pixbuf-2.0-0"),
        ("libuuid.so", "libuuid1"),
        ("libldap", "libldap-2.5-0"),
        ("libkrb5.so", "libkrb5-3"),
        ("libsasl2.so", "libsasl2-2"),
        ("libyaml", "libyaml-0-2"),
        ("libgmp.so", "libgmp10"),
    ];
    LIBRARIES
        .iter()
        .find(|(prefix, _)| library.starts_with(prefix))
        .map(|(_, package)| *package)
}

/// The Debian package that provides a build-time header, `pkg-config` module or linker
/// library (`-lssl`), by its bare name (`openssl/ssl.h`, `libffi`, `ssl`).
pub fn debian_build_package(name: &str) -> Option<&'static str> {
    const BUILD: &[(&str, &str)] = &[
        ("Python.h", "python3-dev"),
        ("ffi", "libffi-dev"),
        ("libffi", "libffi-dev"),
        ("openssl", "libssl-dev"),
        ("ssl", "libssl-dev"),
        ("crypto", "libssl-dev"),
        ("libpq", "libpq-dev"),
        ("pq", "libpq-dev"),
        ("pg_config", "libpq-dev"),
        ("mysql", "default-libmysqlclient-dev"),
        ("mysqlclient", "default-libmysqlclient-dev"),
        ("mariadb", "default-libmysqlclient-dev"),
        ("libxml", "libxml2-dev"),
        ("libxml-2.0", "libxml2-dev"),
        ("libxslt", "libxslt1-dev"),
        ("zlib", "zlib1g-dev"),
        ("z", "zlib1g-dev"),
        ("sqlite3", "libsqlite3-dev"),
        ("jpeg", "libjpeg-dev"),
        ("jpeglib", "libjpeg-dev"),
        ("png", "libpng-dev"),
        ("libpng", "libpng-dev"),
        ("freetype", "libfreetype6-dev"),
        ("freetype2", "libfreetype6-dev"),
        ("cairo", "libcairo2-dev"),
        ("glib-2.0", "libglib2.0-dev"),
        ("vips", "libvips-dev"),
        ("krb5", "libkrb5-dev"),
        ("gssapi", "libkrb5-dev"),
        ("ldap", "libldap2-dev"),
        ("lber", "libldap2-dev"),
        ("sasl", "libsasl2-dev"),
        ("yaml", "libyaml-dev"),
        ("readline", "libreadline-dev"),
        ("gmp", "libgmp-dev"),
        ("magic", "libmagic-dev"),
        ("bz2", "libbz2-dev"),
        ("bzlib", "libbz2-dev"),
        ("lzma", "liblzma-dev"),
        ("uuid", "uuid-dev"),
        ("pkg-config", "pkg-config"),
        ("make", "build-essential"),
        ("gcc", "build-essential"),
        ("cc", "build-essential"),
        ("g++", "build-essential"),
        ("c++", "build-essential"),
        ("x86_64-linux-gnu-gcc", "build-essential"),
        ("python", "python3"),
        ("python3", "python3"),
        ("git", "git"),
        ("protoc", "protobuf-compiler"),
        ("cmake", "cmake"),
    ];
    // `openssl/ssl.h` -> `openssl`, `libxml/xmlversion.h` -> `libxml`, `sqlite3.h` -> `sqlite3`.
    let name = name.split('/').next().unwrap_or(name);
    let bare = if name == "Python.h" {
        name
    } else {
        name.strip_suffix(".h").unwrap_or(name)
    };
    BUILD
        .iter()
        .find(|(key, _)| *key == bare)
        .map(|(_, package)| *package)
}

/// The package (of `language`'s registry) that provides the command `program`, when it is a
/// well-known one an app's dependencies should declare.
pub fn package_for_command(program: &str) -> Option<(devgem_plan::Language, &'static str)> {
    use devgem_plan::Language::{Node, Python, Ruby};
    const COMMANDS: &[(&str, devgem_plan::Language, &str)] = &[
        ("gunicorn", Python, "gunicorn"),
        ("uvicorn", Python, "uvicorn"),
        ("daphne", Python, "daphne"),
        ("hypercorn", Python, "hypercorn"),
        ("waitress-serve", Python, "waitress"),
        ("streamlit", Python, "streamlit"),
        ("flask", Python, "flask"),
        ("fastapi", Python, "fastapi[standard]"),
        ("celery", Python, "celery"),
        ("django-admin", Python, "django"),
        ("alembic", Python, "alembic"),
        ("next", Node, "next"),
        ("vite", Node, "vite"),
        ("nodemon", Node, "nodemon"),
        ("ts-node", Node, "ts-node"),
        ("tsx", Node, "tsx"),
        ("tsc", Node, "typescript"),
        ("react-scripts", Node, "react-scripts"),
        ("nest", Node, "@nestjs/cli"),
        ("serve", Node, "serve"),
        ("pm2", Node, "pm2"),
        ("nuxt", Node, "nuxt"),
        ("astro", Node, "astro"),
        ("rails", Ruby, "rails"),
        ("puma", Ruby, "puma"),
        ("rackup", Ruby, "rackup"),
    ];
    COMMANDS
        .iter()
        .find(|(command, _, _)| *command == program)
        .map(|(_, language, package)| (*language, *package))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_import_names_to_pypi_names() {
        assert_eq!(pypi_package("cv2"), "opencv-python-headless");
        assert_eq!(pypi_package("PIL.Image"), "pillow");
        assert_eq!(pypi_package("google.cloud.storage"), "google-cloud-storage");
        assert_eq!(pypi_package("requests.adapters"), "requests");
    }

    #[test]
    fn maps_libraries_and_headers_to_debian_packages() {
        assert_eq!(debian_runtime_package("libGL.so.1"), Some("libgl1"));
        assert_eq!(debian_runtime_package("libpq.so.5"), Some("libpq5"));
        assert_eq!(debian_build_package("openssl/ssl.h"), Some("libssl-dev"));
        assert_eq!(debian_build_package("Python.h"), Some("python3-dev"));
        assert_eq!(debian_build_package("nothing-like-this"), None);
    }
}
