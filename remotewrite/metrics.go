package remotewrite

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// register registers c with reg and returns it, or returns the identical collector already
// registered there (several Handlers share one set of vectors). A nil reg leaves c
// unregistered. Any other registration error is a programming error (clashing metric
// definitions) and panics, as MustRegister does.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}
