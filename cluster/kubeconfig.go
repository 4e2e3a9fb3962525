package cluster

import (
	"net"
	"strconv"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// AdminKubeconfig issues an admin client certificate and returns a
// kubeconfig for it. The server name checked is APIServerName, so the same
// kubeconfig works against any server's address.
func AdminKubeconfig(ca *CA, s *Settings, now time.Time) ([]byte, error) {
	certPEM, keyPEM, err := ca.IssueKeyPair(CertSpec{CommonName: AdminUser, Orgs: []string{GroupMasters}, TTL: 5 * 365 * 24 * time.Hour}, now)
	if err != nil {
		return nil, err
	}
	name := s.ClusterName
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{
		Server:                   "https://" + net.JoinHostPort(s.AdvertiseIP, strconv.Itoa(s.APIPort)),
		CertificateAuthorityData: ca.CertPEM,
		TLSServerName:            APIServerName,
	}
	cfg.AuthInfos[name+"-admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name + "-admin", Namespace: "default"}
	cfg.CurrentContext = name
	return clientcmd.Write(*cfg)
}

// MergeKubeconfig adds the clusters, users and contexts of data to the
// kubeconfig file at path (created if missing) and makes its context
// current. Entries of other clusters are kept; entries with the same names
// are replaced.
func MergeKubeconfig(path string, data []byte) error {
	add, err := clientcmd.Load(data)
	if err != nil {
		return err
	}
	cur, err := clientcmd.LoadFromFile(path)
	if err != nil {
		cur = clientcmdapi.NewConfig()
	}
	for k, v := range add.Clusters {
		cur.Clusters[k] = v
	}
	for k, v := range add.AuthInfos {
		cur.AuthInfos[k] = v
	}
	for k, v := range add.Contexts {
		cur.Contexts[k] = v
	}
	cur.CurrentContext = add.CurrentContext
	return clientcmd.WriteToFile(*cur, path)
}

// RemoveKubeconfigContext removes a context (and its cluster and user when
// nothing else uses them) from the kubeconfig at path.
func RemoveKubeconfigContext(path, name string) error {
	cur, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return err
	}
	ctx, ok := cur.Contexts[name]
	if !ok {
		return nil
	}
	delete(cur.Contexts, name)
	used := func(cluster, user string) (bool, bool) {
		var c, u bool
		for _, other := range cur.Contexts {
			c = c || other.Cluster == cluster
			u = u || other.AuthInfo == user
		}
		return c, u
	}
	cUsed, uUsed := used(ctx.Cluster, ctx.AuthInfo)
	if !cUsed {
		delete(cur.Clusters, ctx.Cluster)
	}
	if !uUsed {
		delete(cur.AuthInfos, ctx.AuthInfo)
	}
	if cur.CurrentContext == name {
		cur.CurrentContext = ""
	}
	return clientcmd.WriteToFile(*cur, path)
}
