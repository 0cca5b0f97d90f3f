/// Finds the themes an operator can choose: the built-in ones, then theme files.
public enum ThemeLibrary {
    /// The built-in themes; theme files arrive with `docs/themes.md`.
    public static func load() -> [Theme] {
        Theme.builtIn
    }
}
