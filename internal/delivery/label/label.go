// Package label is the delivery model's label vocabulary: the keys Kiln puts on
// the objects it applies and the records it keeps, so that they can be selected.
package label

// Label keys and the managed-by value.
const (
	ManagedBy = "app.kubernetes.io/managed-by"
	Project   = "kiln.dev/project"
	Env       = "kiln.dev/env"
	Service   = "kiln.dev/service"
	Kind      = "kiln.dev/kind"
	Kiln      = "kiln"
)
