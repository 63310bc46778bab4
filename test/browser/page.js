// The browser side of test/browser/browser.test.ts: loaded into a page next to the bundled
// peer library (/peer.js), driven from Node with page.evaluate. Plain browser JavaScript.
import * as omikron from "/peer.js";

const quiet = { keepAliveMs: 0, reconnect: false };

/** A client of `iotaId` that answers with what it was sent and collects what it receives. */
window.runClient = async ({ url, iotaId, userId, keyHash }) => {
  const client = await omikron.connectClient({ url, iotaId, userId, privateKeyHash: keyHash, ...quiet });
  window.client = client;
  window.received = [];
  client.on("message", (frame) => window.received.push(frame));
  return client.identification.data;
};

/**
 * A call member with an RTCPeerConnection to `remoteId` whose only signalling path is the call
 * room: SDP and ICE candidates go out as webrtc_sdp / webrtc_ice addressed by receiver_id.
 * Frames are handled one after another, since an ICE candidate may arrive while the remote
 * description is still being applied.
 */
window.joinCallWithPeerConnection = async ({ url, callId, userId, keyHash, remoteId }) => {
  const call = await omikron.joinCall({ url, callId, userId, privateKeyHash: keyHash, ...quiet });
  const pc = new RTCPeerConnection({ iceServers: [] });
  const signalling = [];
  const early = [];
  let queue = Promise.resolve();
  pc.onicecandidate = ({ candidate }) => {
    if (candidate) call.send({ type: "webrtc_ice", receiver_id: remoteId, data: { candidate: candidate.toJSON() } });
  };
  const handle = async (frame) => {
    if (frame.sender_id !== remoteId) return;
    signalling.push(frame.type);
    if (frame.type === "webrtc_sdp") {
      await pc.setRemoteDescription(frame.data);
      for (const candidate of early.splice(0)) await pc.addIceCandidate(candidate);
      if (frame.data.type === "offer") {
        await pc.setLocalDescription();
        call.send({ type: "webrtc_sdp", receiver_id: remoteId, data: pc.localDescription.toJSON() });
      }
    } else if (frame.type === "webrtc_ice") {
      if (pc.remoteDescription) await pc.addIceCandidate(frame.data.candidate);
      else early.push(frame.data.candidate);
    }
  };
  call.on("message", (frame) => {
    queue = queue.then(() => handle(frame));
  });

  /** Offers a data channel, sends `text` once it opens, answers the reply. */
  window.offer = async (text) => {
    const channel = pc.createDataChannel("chat");
    const reply = new Promise((resolve) => {
      channel.onmessage = (event) => resolve(event.data);
    });
    channel.onopen = () => channel.send(text);
    await pc.setLocalDescription();
    call.send({ type: "webrtc_sdp", receiver_id: remoteId, data: pc.localDescription.toJSON() });
    return reply;
  };
  /** Resolves with the first data-channel message and the signalling seen, after echoing it. */
  window.answered = new Promise((resolve) => {
    pc.ondatachannel = ({ channel }) => {
      channel.onmessage = (event) => {
        channel.send(`echo: ${event.data}`);
        resolve({ message: event.data, signalling: [...new Set(signalling)].sort() });
      };
    };
  });
  return [...call.members.keys()].sort();
};
