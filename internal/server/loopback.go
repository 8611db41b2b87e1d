package server

import (
	"fmt"

	"k8s.io/client-go/rest"

	"github.com/skiff-sh/skiff/internal/certs"
)

// loopbackConfig is how in-process components reach the API: as ordinary
// clients over HTTPS with a certificate of their own.
func loopbackConfig(pki *certs.PKI, url, user string) (*rest.Config, error) {
	return loopbackConfigFor(pki, url, user, []string{"system:masters"})
}

func loopbackConfigFor(pki *certs.PKI, url, user string, groups []string) (*rest.Config, error) {
	cert, key, err := pki.IssueClient(user, groups, 0)
	if err != nil {
		return nil, fmt.Errorf("issue %s certificate: %w", user, err)
	}
	return &rest.Config{
		Host:            url,
		TLSClientConfig: rest.TLSClientConfig{CAData: pki.CAPEM, CertData: cert, KeyData: key},
		// In-process clients cost no network: limit them only against runaway loops.
		QPS:       2000,
		Burst:     4000,
		UserAgent: user,
	}, nil
}
