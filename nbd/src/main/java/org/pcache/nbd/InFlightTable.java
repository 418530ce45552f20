package org.pcache.nbd;

import java.util.ArrayList;
import java.util.List;

/**
 * The client's requests in flight, by handle. A handle is a slot index in its low 32 bits and the slot's
 * generation above, so a reply for a request that already finished (a server bug) is caught rather than
 * given to the slot's next user.
 *
 * <p>Threading: every method takes the table's lock; callers bound the number of registrations to
 * the capacity given (the client's in-flight semaphore).
 */
final class InFlightTable {

    private final ClientRequest[] slots;
    private final int[] generations;
    private final int[] free;
    /** Guarded by this. */
    private int freeCount;

    InFlightTable(int capacity) {
        slots = new ClientRequest[capacity];
        generations = new int[capacity];
        free = new int[capacity];
        for (int i = 0; i < capacity; i++) {
            free[i] = i;
        }
        freeCount = capacity;
    }

    /** Gives the request a free slot and its handle. */
    synchronized void register(ClientRequest request) {
        int slot = free[--freeCount];
        request.handle = ((long) ++generations[slot] << 32) | slot;
        slots[slot] = request;
    }

    /** The request a reply's handle names. */
    synchronized ClientRequest lookup(long handle) throws NbdProtocolException {
        int slot = (int) handle;
        ClientRequest request = slot >= 0 && slot < slots.length ? slots[slot] : null;
        if (request == null || request.handle != handle) {
            throw new NbdProtocolException("reply for unknown handle 0x" + Long.toHexString(handle));
        }
        return request;
    }

    /** Frees the request's slot; false if it was already removed. */
    synchronized boolean remove(ClientRequest request) {
        int slot = (int) request.handle;
        if (slots[slot] != request) {
            return false;
        }
        slots[slot] = null;
        free[freeCount++] = slot;
        return true;
    }

    /** Every request still registered. */
    synchronized List<ClientRequest> snapshot() {
        List<ClientRequest> requests = new ArrayList<>();
        for (ClientRequest request : slots) {
            if (request != null) {
                requests.add(request);
            }
        }
        return requests;
    }
}
