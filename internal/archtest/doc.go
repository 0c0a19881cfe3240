// Package archtest keeps the layering of docs/architecture.md. Its tests read
// the module's source with go/parser and fail when a package imports across a
// layer it must not cross (the application and HTTP layers reach adapters
// only through the ports internal/watch declares; only adapters import the
// Azure SDK), or when a function in the application, storage or HTTP layer
// grows past 80 lines (STYLE.md rule 14). It has no code of its own.
package archtest
