//! The lineages' own comments on their routines, for reports: the doc comment above a
//! routine's `fn` in the lineage's source (or the comments that open its body), read from the
//! source compiled into this crate.

/// The source of the module that implements `lineage`'s routines, if it is a built-in one.
fn source_of(lineage: &str) -> Option<&'static str> {
    Some(match lineage {
        "linux-2.4" | "linux-2.5-rmap" => include_str!("lineage/linux24.rs"),
        "linux-2.6.14" | "linux-2.6.15" | "recheck" => include_str!("lineage/linux26.rs"),
        l if l.starts_with("tmpalias") => include_str!("lineage/linux3x.rs"),
        "linux-6.0" => include_str!("lineage/linux60.rs"),
        "linux-6.10" => include_str!("lineage/linux610.rs"),
        "linux-6.x" => include_str!("lineage/linux6x.rs"),
        "whole-cache" => include_str!("lineage/whole_cache.rs"),
        l if l.starts_with("swbits-") => include_str!("lineage/soft_dirty.rs"),
        l if l.starts_with("hash-") => include_str!("lineage/hash.rs"),
        l if l.starts_with("gather-") => include_str!("lineage/gather.rs"),
        l if l.starts_with("clean-") => include_str!("lineage/clean.rs"),
        _ => return None,
    })
}

/// `lineage`'s comment on `routine` (an [`vipt_emu::arch::ArchHooks`] method name), as one
/// line: the doc comment above its first definition in the lineage's source, else the
/// comments that open its body. `None` when the lineage's source defines no such routine
/// (it inherits the routine) or says nothing about it.
pub fn routine_comment(lineage: &str, routine: &str) -> Option<String> {
    let src = source_of(lineage)?;
    let lines: Vec<&str> = src.lines().collect();
    let decl = format!("fn {routine}<'a>(");
    let at = lines.iter().position(|l| l.trim_start().starts_with(&decl))?;
    let mut above: Vec<&str> = lines[..at]
        .iter()
        .rev()
        .map(|l| l.trim())
        .take_while(|l| l.starts_with("///") || l.starts_with("#["))
        .filter_map(|l| l.strip_prefix("///"))
        .collect();
    above.reverse();
    let mut text: Vec<&str> = above.iter().map(|l| l.trim()).collect();
    if text.is_empty() {
        // The comments among the first lines of the body.
        text = lines[at + 1..]
            .iter()
            .take(12)
            .map(|l| l.trim())
            .take_while(|l| !l.starts_with("fn ") && !l.starts_with("}"))
            .filter_map(|l| l.strip_prefix("//"))
            .map(str::trim)
            .collect();
    }
    let joined = text.join(" ");
    let joined = joined.trim();
    (!joined.is_empty()).then(|| joined.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_routine_comment_is_found_above_or_inside_its_definition() {
        let c = routine_comment("linux-6.0", "flush_cache_page").unwrap();
        assert!(c.starts_with("`flush_cache_page`: `WARN_ON(!pfn_valid)`"), "{c}");
        let inside = routine_comment("linux-2.6.14", "flush_cache_page").unwrap();
        assert!(inside.contains("ignores its pfn argument"), "{inside}");
        assert_eq!(routine_comment("pipt", "flush_dcache_page"), None);
        assert_eq!(routine_comment("linux-6.0", "no_such_routine"), None);
    }
}
