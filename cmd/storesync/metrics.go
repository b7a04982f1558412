package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsServer serves a Prometheus registry at /metrics over HTTP.
type metricsServer struct {
	l   net.Listener
	srv *http.Server
}

// listenMetrics registers the Go runtime and process collectors with reg
// and listens on addr (HOST:PORT; port 0 picks a free one). The node
// registers its own metrics with reg.
func listenMetrics(addr string, reg *prometheus.Registry) (*metricsServer, error) {
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, err
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return &metricsServer{l: l, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}, nil
}

// addr returns the address listened on, with the port chosen.
func (m *metricsServer) addr() string { return m.l.Addr().String() }

// serve serves until shutdown, which it does not report as an error.
func (m *metricsServer) serve() error { return serveErr(m.srv.Serve(m.l)) }

func (m *metricsServer) shutdown(ctx context.Context) error { return m.srv.Shutdown(ctx) }

// close releases the listener if the server never ran.
func (m *metricsServer) close() { _ = m.l.Close() }
