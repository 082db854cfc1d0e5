package api

// Write ops: every command that changes state goes through the Raft log and
// takes an idempotency seq. A client sends them by name in a req frame;
// the server refuses, with CodeForbidden, one its role may not send (the
// system ops below are the engine's own and never a client's). The names
// are part of the wire protocol: never rename one.
const (
	OpCreateMRD         = "create_mrd"
	OpCreateChannelType = "create_channel_type"
	OpCreateList        = "create_list"
	OpCreateQueue       = "create_queue"
	OpCreateChannel     = "create_channel"
	OpCreateAgent       = "create_agent"
	OpCreateConnector   = "create_connector"
	OpDeleteList        = "delete_list"
	OpDeleteAgent       = "delete_agent"
	OpNoop              = "noop"
	OpRegisterNode      = "register_node"
	OpDeregisterNode    = "deregister_node"
	OpSetFeatureLevel   = "set_feature_level"
	OpDeleteConnector   = "delete_connector"
	OpSubscribe         = "subscribe"
	OpUnsubscribe       = "unsubscribe"
	OpCustomerMessage   = "customer_message"
	OpRequestAgent      = "request_agent"
	OpJoin              = "join"
	OpLeave             = "leave"
	OpClose             = "close"
	OpSend              = "send"
	OpLogin             = "login"
	OpLogout            = "logout"
	OpSetAgentState     = "set_agent_state"
	OpSetAgentMode      = "set_agent_mode"
	OpAddQueueMember    = "add_queue_member"
	OpRemoveQueueMember = "remove_queue_member"
	OpSetPullPolicy     = "set_pull_policy"
	OpRequestChat       = "request_chat"
	OpAcceptOffer       = "accept_offer"
	OpRejectOffer       = "reject_offer"
	OpOfferTimeout      = "offer_timeout"
	OpTransfer          = "transfer"
	OpTransferToQueue   = "transfer_to_queue"
	OpInvite            = "invite"
	OpSetServiceLevel   = "set_service_level"
	OpSLAWarning        = "sla_warning"
	OpSLABreach         = "sla_breach"
	OpRemindInactive    = "remind_inactive"
	OpCloseInactive     = "close_inactive"
	OpCreateSupervisor  = "create_supervisor"
	OpDeleteSupervisor  = "delete_supervisor"
	OpAgentPresent      = "agent_present"
	OpLogoutAbsent      = "logout_absent"
	OpGrantList         = "grant_list"
	OpRevokeList        = "revoke_list"
	OpSetListAccess     = "set_list_access"
)

// writeOps is every write op, for IsWrite and WriteOps.
var writeOps = [...]string{
	OpCreateMRD,
	OpCreateChannelType,
	OpCreateList,
	OpCreateQueue,
	OpCreateChannel,
	OpCreateAgent,
	OpCreateConnector,
	OpDeleteList,
	OpDeleteAgent,
	OpNoop,
	OpRegisterNode,
	OpDeregisterNode,
	OpSetFeatureLevel,
	OpDeleteConnector,
	OpSubscribe,
	OpUnsubscribe,
	OpCustomerMessage,
	OpRequestAgent,
	OpJoin,
	OpLeave,
	OpClose,
	OpSend,
	OpLogin,
	OpLogout,
	OpSetAgentState,
	OpSetAgentMode,
	OpAddQueueMember,
	OpRemoveQueueMember,
	OpSetPullPolicy,
	OpRequestChat,
	OpAcceptOffer,
	OpRejectOffer,
	OpOfferTimeout,
	OpTransfer,
	OpTransferToQueue,
	OpInvite,
	OpSetServiceLevel,
	OpSLAWarning,
	OpSLABreach,
	OpRemindInactive,
	OpCloseInactive,
	OpCreateSupervisor,
	OpDeleteSupervisor,
	OpAgentPresent,
	OpLogoutAbsent,
	OpGrantList,
	OpRevokeList,
	OpSetListAccess,
}

// IsWrite reports whether op names a write op (a command through the Raft
// log); every other op is a read.
func IsWrite(op string) bool {
	_, ok := writeOpSet[op]
	return ok
}

// WriteOp returns the canonical string of the write op named by b, without
// allocating, and whether b names one.
func WriteOp(b []byte) (string, bool) {
	i, ok := writeOpSet[string(b)]
	if !ok {
		return "", false
	}
	return writeOps[i], true
}

// WriteOps returns the names of every write op.
func WriteOps() []string { return append([]string(nil), writeOps[:]...) }

var writeOpSet = func() map[string]int {
	m := make(map[string]int, len(writeOps))
	for i, op := range writeOps {
		m[op] = i
	}
	return m
}()
