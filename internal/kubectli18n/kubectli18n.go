// Package kubectli18n keeps the embedded kubectl from loading its message
// catalog when the locale asks for none (LANG and friends unset, C or POSIX):
// kubectl's packages translate their help texts while they initialise, and
// loading the catalog then cost ~20 ms of every skiff process's start
// (server, agent, each `skiff kubectl`). The default catalog maps every text
// to itself, so nothing printed changes; other locales load as before.
//
// Import it (blank) from package main before any kubectl package: Go
// initialises it first because its path sorts before k8s.io/… and it only
// depends on kubectl's i18n package.
package kubectli18n

import (
	"os"
	"strings"

	"k8s.io/kubectl/pkg/util/i18n"
)

func init() {
	_ = i18n.SetLoadTranslationsFunc(func() error {
		if defaultLocale() {
			return nil
		}
		return i18n.LoadTranslations("kubectl", nil)
	})
}

// defaultLocale reports whether kubectl would pick its "default" (English,
// identity) catalog: no locale set, or the C/POSIX locale.
func defaultLocale() bool {
	lang := os.Getenv("LC_ALL")
	if lang == "" {
		lang = os.Getenv("LC_MESSAGES")
	}
	if lang == "" {
		lang = os.Getenv("LANG")
	}
	base, _, _ := strings.Cut(lang, ".")
	return base == "" || base == "C" || base == "POSIX"
}
