//! The Simple Icons slug (<https://simpleicons.org>) of each framework the detectors name, for
//! clients to show a logo. Only slugs Simple Icons has are listed; other frameworks get none.

/// The Simple Icons slug of a framework as the detectors name it.
pub fn framework_icon(framework: &str) -> Option<&'static str> {
    let slug = match framework {
        // Python
        "flask" => "flask",
        "fastapi" => "fastapi",
        "django" => "django",
        "streamlit" => "streamlit",
        "aiohttp" => "aiohttp",
        // JavaScript
        "nextjs" => "nextdotjs",
        "nuxt" => "nuxt",
        "sveltekit" => "svelte",
        "remix" => "remix",
        "react-router" => "reactrouter",
        "astro" => "astro",
        "nestjs" => "nestjs",
        "angular" => "angular",
        "gatsby" => "gatsby",
        "express" => "express",
        "fastify" => "fastify",
        "koa" => "koa",
        "hono" => "hono",
        "vite" => "vite",
        "vue-cli" => "vuedotjs",
        "cra" => "createreactapp",
        // Go
        "gin" => "gin",
        // JVM
        "spring-boot" => "springboot",
        "quarkus" => "quarkus",
        // PHP
        "laravel" => "laravel",
        "symfony" => "symfony",
        "cakephp" => "cakephp",
        "codeigniter" => "codeigniter",
        // Ruby, .NET, Elixir
        "rails" => "rubyonrails",
        "aspnet-core" => "dotnet",
        "phoenix" => "phoenixframework",
        _ => return None,
    };
    Some(slug)
}

#[cfg(test)]
mod tests {
    use super::framework_icon;

    #[test]
    fn slugs_are_the_simple_icons_ones() {
        assert_eq!(framework_icon("nextjs"), Some("nextdotjs"));
        assert_eq!(framework_icon("flask"), Some("flask"));
        assert_eq!(framework_icon("rails"), Some("rubyonrails"));
        // No Simple Icons logo: no slug rather than a wrong one.
        assert_eq!(framework_icon("bottle"), None);
    }
}
