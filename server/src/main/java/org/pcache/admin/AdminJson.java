package org.pcache.admin;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;

/**
 * The JSON of the admin endpoint: records with camelCase components become snake_case fields, matching dm-pcache's
 * status names ({@code segsUsed} is {@code segs_used}); output is indented; fields a newer server adds are ignored
 * by an older client.
 */
public final class AdminJson {

    /** Configured once, never changed: an ObjectMapper is thread-safe once configured. */
    public static final ObjectMapper MAPPER = new ObjectMapper()
            .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .enable(SerializationFeature.INDENT_OUTPUT)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    private AdminJson() {
    }
}
