//! Java and Kotlin on Maven or Gradle: Spring Boot, Quarkus, Micronaut.

use crate::common::*;
use crate::pat::Pat;
use crate::repo::App;
use crate::{Language, PackageManager, Template};

const JAVA: &[&str] = &["java", "kt"];
const KNOWN: &[&str] = &["11", "17", "21", "25"];

static ENV: Pat = Pat::new(
    &["System.getenv"],
    r#"System\.getenv\(\s*"([A-Za-z_][A-Za-z0-9_]*)"\s*\)"#,
);
static PROP_ENV: Pat = Pat::new(&["${"], r"\$\{([A-Z][A-Z0-9_]*)(?::[^}]*)?\}");
static GRADLE_TOOLCHAIN: Pat = Pat::new(
    &["JavaLanguageVersion.of"],
    r"JavaLanguageVersion\.of\(\s*(\d+)\s*\)",
);
static GRADLE_COMPAT: Pat = Pat::new(
    &["Compatibility", "jvmTarget"],
    r#"(?:sourceCompatibility|targetCompatibility|jvmTarget)\s*=\s*(?:JavaVersion\.VERSION_)?['"]?(?:1_)?(\d+)"#,
);
static SERVER_PORT: Pat = Pat::new(
    &["server.port", "http.port"],
    r"(?m)^\s*(?:server\.port|quarkus\.http\.port|micronaut\.server\.port)\s*[=:]\s*(\d{2,5})",
);

struct Jvm {
    framework: Option<&'static str>,
    version: Option<Versioned>,
    artifact_id: String,
    jar_version: String,
}

fn start_for(framework: Option<&str>, jar: &str) -> String {
    match framework {
        Some("quarkus") => {
            format!("java -Dquarkus.http.host=0.0.0.0 -Dquarkus.http.port=$PORT -jar {jar}")
        }
        Some("micronaut") => {
            format!("java -Dmicronaut.server.host=0.0.0.0 -Dmicronaut.server.port=$PORT -jar {jar}")
        }
        _ => format!("java -Dserver.address=0.0.0.0 -Dserver.port=$PORT -jar {jar}"),
    }
}

fn finish(app: &App, mut det: Detected, j: Jvm, build_tool: &str) -> Detected {
    if let Some(f) = j.framework {
        det.score += 0.3;
        det.evidence(format!("framework {f} in the {build_tool} build"));
    }
    det.analysis.framework = j.framework.map(str::to_string);
    let v = j
        .version
        .or_else(|| {
            tool_versions(app, "java").map(|v| {
                Versioned::new(
                    v.version
                        .split(['-', '.'])
                        .find(|p| p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty())
                        .unwrap_or("21")
                        .to_string(),
                    v.source,
                )
            })
        })
        .unwrap_or_else(|| Versioned::new("21", "default (no pin found)"));
    let v = if KNOWN.contains(&v.version.as_str()) {
        v
    } else {
        let picked = pick_version(&format!(">={}", v.version), "21", KNOWN).unwrap_or("21".into());
        Versioned::new(
            picked,
            format!("{} (\"{}\", nearest LTS image)", v.source, v.version),
        )
    };
    det.set_version(v);
    let jar = if j.framework == Some("quarkus") {
        "quarkus-app/quarkus-run.jar"
    } else {
        "app.jar"
    };
    det.analysis.start_command =
        Some(procfile_web(app).unwrap_or_else(|| start_for(j.framework, jar)));
    det.analysis.details.artifact = Some(if build_tool == "maven" {
        if j.framework == Some("quarkus") {
            "target/quarkus-app".into()
        } else {
            format!("target/{}-{}.jar", j.artifact_id, j.jar_version)
        }
    } else if j.framework == Some("quarkus") {
        "build/quarkus-app".into()
    } else {
        "build/libs".into()
    });
    det.analysis.entrypoint = det.analysis.details.artifact.clone();
    let reads = app
        .sources(&["properties", "yml", "yaml"], 5)
        .any(|(_, t)| t.contains("${PORT"));
    det.analysis.reads_port_env = true; // the start command passes $PORT as a system property
    if reads {
        det.evidence("application configuration reads ${PORT}");
    }
    let props = [
        "src/main/resources/application.properties",
        "src/main/resources/application.yml",
        "src/main/resources/application.yaml",
    ];
    det.analysis.dev_port = props
        .iter()
        .find_map(|p| {
            app.text(p)
                .and_then(|t| SERVER_PORT.captures(t))
                .and_then(|c| c.get(1)?.as_str().parse().ok())
        })
        .or(Some(8080));
    let mut vars = env_vars_by(app, JAVA, &ENV, Required::UnlessDefault);
    for p in props {
        if let Some(t) = app.text(p) {
            for c in PROP_ENV.captures_iter(t) {
                let (Some(all), Some(n)) = (c.get(0), c.get(1)) else {
                    continue;
                };
                let name = n.as_str();
                if name == "PORT" || vars.iter().any(|v| v.name == name) {
                    continue;
                }
                vars.push(crate::EnvVarUse {
                    name: name.into(),
                    secret: is_secret(name),
                    required: !all.as_str().contains(':'),
                });
            }
        }
    }
    vars.sort_by(|a, b| a.name.cmp(&b.name));
    det.analysis.env_vars = vars;
    let v = det.analysis.runtime_version.clone().unwrap_or_default();
    let d = &mut det.analysis.details;
    d.base_image = Some("debian:bookworm-slim".into());
    d.build_image = Some(if build_tool == "maven" {
        format!("maven:3.9-eclipse-temurin-{v}")
    } else {
        format!("gradle:8-jdk{v}")
    });
    d.env.insert("JAVA_HOME".into(), "/opt/java/openjdk".into());
    det.score = det.score.min(1.0);
    det
}

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children().find(|c| c.tag_name().name() == name)
}

pub fn detect_maven(app: &App) -> Option<Detected> {
    let text = app.text("pom.xml")?;
    let mut det = Detected::new(Language::Java, 0.6);
    det.evidence("pom.xml at the app root");
    det.analysis.package_manager = Some(PackageManager::Maven);
    let mut j = Jvm {
        framework: None,
        version: None,
        artifact_id: "app".into(),
        jar_version: "0.0.1-SNAPSHOT".into(),
    };
    match roxmltree::Document::parse(text) {
        Ok(doc) => {
            let root = doc.root_element();
            let text_of = |n: Option<roxmltree::Node<'_, '_>>| {
                n.and_then(|n| n.text()).map(|s| s.trim().to_string())
            };
            if let Some(a) = text_of(child(root, "artifactId")) {
                j.artifact_id = a;
            }
            if let Some(v) = text_of(child(root, "version")) {
                j.jar_version = v;
            }
            let parent = text_of(child(root, "parent").and_then(|p| child(p, "artifactId")))
                .unwrap_or_default();
            let groups: Vec<String> = doc
                .descendants()
                .filter(|n| n.tag_name().name() == "groupId")
                .filter_map(|n| n.text().map(|s| s.trim().to_string()))
                .collect();
            j.framework = if parent.contains("spring-boot")
                || groups.iter().any(|g| g == "org.springframework.boot")
            {
                Some("spring-boot")
            } else if groups.iter().any(|g| g.starts_with("io.quarkus")) {
                Some("quarkus")
            } else if groups.iter().any(|g| g.starts_with("io.micronaut"))
                || parent.contains("micronaut")
            {
                Some("micronaut")
            } else {
                None
            };
            if let Some(props) = child(root, "properties") {
                for key in [
                    "java.version",
                    "maven.compiler.release",
                    "maven.compiler.target",
                    "maven.compiler.source",
                    "jdk.version",
                ] {
                    if let Some(v) = text_of(child(props, key)) {
                        let v = v.trim_start_matches("1.").to_string();
                        j.version = Some(Versioned::new(v, format!("pom.xml <{key}>")));
                        break;
                    }
                }
            }
        }
        Err(e) => {
            det.score = 0.35;
            det.evidence(format!("warning: pom.xml is not valid XML ({e}); ignored"));
        }
    }
    let mvn = if app.has("mvnw") { "./mvnw" } else { "mvn" };
    det.analysis.install_command = Some(format!("{mvn} -B -q dependency:go-offline"));
    det.analysis.build_command = Some(format!("{mvn} -B -q -DskipTests package"));
    det.analysis.details.template = Some(Template::JavaMaven);
    det.analysis.details.manifests = ["pom.xml", "mvnw", ".mvn"]
        .iter()
        .filter(|f| app.has(f) || app.has_dir(f))
        .map(|s| s.to_string())
        .collect();
    Some(finish(app, det, j, "maven"))
}

pub fn detect_gradle(app: &App) -> Option<Detected> {
    let name = app.first_of(&["build.gradle.kts", "build.gradle"])?;
    let text = app.text(name).unwrap_or("");
    let mut det = Detected::new(Language::Java, 0.6);
    det.evidence(format!("{name} at the app root"));
    det.analysis.package_manager = Some(PackageManager::Gradle);
    let framework = if text.contains("org.springframework.boot") {
        Some("spring-boot")
    } else if text.contains("io.quarkus") {
        Some("quarkus")
    } else if text.contains("io.micronaut") {
        Some("micronaut")
    } else {
        None
    };
    let version = GRADLE_TOOLCHAIN
        .captures(text)
        .or_else(|| GRADLE_COMPAT.captures(text))
        .and_then(|c| c.get(1))
        .map(|m| Versioned::new(m.as_str(), format!("{name} Java version")));
    let j = Jvm {
        framework,
        version,
        artifact_id: String::new(),
        jar_version: String::new(),
    };
    let gradle = if app.has("gradlew") {
        "./gradlew"
    } else {
        "gradle"
    };
    det.analysis.install_command = Some(format!("{gradle} --no-daemon dependencies > /dev/null"));
    let task = if framework == Some("spring-boot") {
        "bootJar"
    } else if framework == Some("quarkus") {
        "quarkusBuild"
    } else {
        "build"
    };
    det.analysis.build_command = Some(format!("{gradle} --no-daemon {task} -x test"));
    det.analysis.details.template = Some(Template::JavaGradle);
    det.analysis.details.manifests = [
        name,
        "settings.gradle",
        "settings.gradle.kts",
        "gradle.properties",
        "gradlew",
        "gradle",
    ]
    .iter()
    .filter(|f| app.has(f) || app.has_dir(f))
    .map(|s| s.to_string())
    .collect();
    Some(finish(app, det, j, "gradle"))
}

static MAIN_METHOD: Pat = Pat::new(
    &["void main("],
    r"\bstatic\s+void\s+main\s*\(\s*(?:final\s+)?String",
);
static JAVA_PACKAGE: Pat = Pat::new(&["package "], r"(?m)^\s*package\s+[\w.]+\s*;");
static JAVA_READS_PORT: Pat = Pat::new(
    &["\"PORT\""],
    r#"getenv\(\s*"PORT"\s*\)|getenv\(\)\.(?:getOrDefault|get)\(\s*"PORT""#,
);
static JAVA_PORT: Pat = Pat::new(
    &["InetSocketAddress(", "port"],
    r"(?:InetSocketAddress\(\s*(?:[^,()]+,\s*)?|\bport\s*=\s*)(\d{2,5})\b",
);

/// Java sources without Maven or Gradle (a lone `Main.java`): compiled with `javac`, run with
/// `java` on the class with the `main` method. Only sources at the app root without a
/// `package` line, the layout `java Main.java` runs.
pub fn detect_java_source(app: &App) -> Option<Detected> {
    if app.has("pom.xml") || app.has("build.gradle") || app.has("build.gradle.kts") {
        return None;
    }
    let files: Vec<String> = app
        .files_in("")
        .into_iter()
        .filter(|f| f.ends_with(".java"))
        .filter(|f| app.text(f).is_some_and(|t| !JAVA_PACKAGE.is_match(t)))
        .collect();
    let main = files
        .iter()
        .filter(|f| app.text(f).is_some_and(|t| MAIN_METHOD.is_match(t)))
        .min_by_key(|f| (f.as_str() != "Main.java", f.len()))?;
    let class = main.trim_end_matches(".java").to_string();
    let mut det = Detected::new(Language::Java, 0.4);
    det.evidence(format!(
        "no Maven or Gradle build: {main} has a main method; compiled with javac"
    ));
    if app
        .text(main)
        .is_some_and(|t| t.contains("com.sun.net.httpserver") || t.contains("ServerSocket"))
    {
        det.score += 0.3;
        det.evidence(format!("{main} starts an HTTP server from the JDK"));
    }
    det.set_version(
        tool_versions(app, "java")
            .map(|v| {
                let major = v
                    .version
                    .split(['-', '.'])
                    .find(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
                    .unwrap_or("21")
                    .to_string();
                Versioned::new(major, v.source)
            })
            .unwrap_or_else(|| Versioned::new("21", "default (no pin found)")),
    );
    det.analysis.build_command = Some(format!("javac -d out {}", files.join(" ")));
    det.analysis.start_command =
        Some(procfile_web(app).unwrap_or_else(|| format!("java -cp out {class}")));
    det.analysis.entrypoint = Some(main.clone());
    det.analysis.details.artifact = Some("out".into());
    det.analysis.reads_port_env = any_source(app, JAVA, &JAVA_READS_PORT, 1).is_some();
    port_from_sources(
        app,
        &mut det.analysis,
        JAVA,
        &JAVA_PORT,
        None,
        "read the port: int port = Integer.parseInt(System.getenv().getOrDefault(\"PORT\", \"8080\"));",
    );
    det.analysis.env_vars = env_vars_by(app, JAVA, &ENV, Required::UnlessDefault);
    let v = det.analysis.runtime_version.clone().unwrap_or_default();
    let d = &mut det.analysis.details;
    d.template = Some(Template::JavaSource);
    d.build_image = Some(format!("eclipse-temurin:{v}-jdk"));
    d.base_image = Some("debian:bookworm-slim".into());
    Some(det)
}
