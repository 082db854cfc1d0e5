package cluster

import (
	"context"

	"github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/transport"
)

// Commit is the transport's write path: the command is decoded and its
// sender's role checked (fsm.Registry.NewCommand), so bad arguments and a
// forbidden op are refused before anything is proposed; then it is
// submitted.
func (s *Service) Commit(ctx context.Context, w transport.Write) (any, uint64, error) {
	cmd, ferr := fsm.Commands.NewCommand(w.By, w.ClientID, w.Seq, w.Op, w.Args)
	if ferr != nil {
		return nil, 0, ferr
	}
	res, index, err := s.Submit(ctx, cmd)
	if err != nil {
		return nil, 0, err
	}
	if res.Err != nil {
		return nil, index, res.Err
	}
	return res.Data, index, nil
}
