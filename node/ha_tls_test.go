package node

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard/switchboard/cluster"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/transport"
)

// haTLSFiles writes a CA and one certificate it signed (valid for
// 127.0.0.1, server and client use) and returns the PEM paths and the CA
// pool.
func haTLSFiles(t testing.TB) (cert, key, ca string, pool *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "switchboard test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pool = x509.NewCertPool()
	pool.AddCert(caCert)
	return write("node.pem", "CERTIFICATE", leafDER), write("node-key.pem", "EC PRIVATE KEY", keyDER),
		write("ca.pem", "CERTIFICATE", caDER), pool
}

// TestHATLS: a cluster with TLS on the client port and mutual TLS between
// nodes (node calls and Raft) forwards writes; clients connect with the CA
// only; a node session without a client certificate is refused even with
// the right token; plain TCP gets nowhere.
func TestHATLS(t *testing.T) {
	cert, key, ca, pool := haTLSFiles(t)
	c := startHACluster(t, 3, func(cfg *Config) {
		cfg.TLS = &cluster.TLSConfig{CertFile: cert, KeyFile: key, CAFile: ca}
	})
	f := c.followers()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	admin, err := transport.Dial(ctx, transport.ClientConfig{Addrs: []string{f[0].client}, Role: "admin", Token: haAdminToken,
		TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatalf("dial over TLS: %v", err)
	}
	defer admin.Close()
	haCall(t, admin, "create_list", api.CreateListArgs{ID: "L1"}, nil)
	var cs api.ClusterStatus
	haCall(t, admin, QueryClusterStatus, nil, &cs)
	for _, n := range cs.Nodes {
		if !n.Reachable {
			t.Fatalf("cluster status over mutual TLS: %+v", n)
		}
	}

	// A node hello over TLS without a client certificate: refused.
	tc, err := tls.Dial("tcp", f[0].client, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	b, _ := transport.EncodeFrame(&transport.Frame{T: transport.TypeHello, V: transport.ProtocolVersion, Role: cluster.RoleNode, User: "intruder", Token: haClusterToken})
	if _, err := tc.Write(b); err != nil {
		t.Fatal(err)
	}
	var fr transport.Frame
	if err := transport.ReadFrame(bufio.NewReader(tc), 1<<20, &fr); err != nil {
		t.Fatal(err)
	}
	if fr.T != transport.TypeBye || fr.Err == nil || fr.Err.Code != api.CodeUnauthenticated {
		t.Fatalf("node hello without a certificate: %+v", fr)
	}

	// Plain TCP to a TLS port fails.
	pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer pcancel()
	if plain, err := transport.Dial(pctx, transport.ClientConfig{Addrs: []string{f[0].client}, Role: "admin", Token: haAdminToken, DialTimeout: 2 * time.Second}); err == nil {
		plain.Close()
		t.Fatal("a plain TCP client got in on a TLS port")
	}
	c.waitConverged()
}
