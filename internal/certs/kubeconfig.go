package certs

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Names used inside the written kubeconfig.
const (
	kubeconfigCluster = "skiff"
	kubeconfigUser    = "admin"
	kubeconfigContext = "skiff"
)

// WriteKubeconfig writes a kubeconfig for serverURL with the CA and the admin
// client certificate embedded (cluster "skiff", user "admin", current context
// "skiff"). Data is embedded rather than referenced so the file can be copied
// to another machine. The file is mode 0600 because it holds the admin key;
// missing parent directories are created with mode 0700.
func (p *PKI) WriteKubeconfig(path, serverURL string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[kubeconfigCluster] = &clientcmdapi.Cluster{
		Server:                   serverURL,
		CertificateAuthorityData: p.CAPEM,
	}
	cfg.AuthInfos[kubeconfigUser] = &clientcmdapi.AuthInfo{
		ClientCertificateData: p.AdminCertPEM,
		ClientKeyData:         p.AdminKeyPEM,
	}
	cfg.Contexts[kubeconfigContext] = &clientcmdapi.Context{
		Cluster:  kubeconfigCluster,
		AuthInfo: kubeconfigUser,
	}
	cfg.CurrentContext = kubeconfigContext

	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return fmt.Errorf("encode kubeconfig: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create directory for kubeconfig %s: %w", path, err)
	}
	// Not clientcmd.WriteToFile: it keeps the mode of an existing file, and
	// writes in place, so a reader could see a half-written config.
	if err := writeFileAtomic(path, data, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}
